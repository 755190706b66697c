"""`make bench`'s own parts: the floor it measures landing against, the ratios and the table.

The bench's job run is the real `refresh_all` (covered by the pipeline tests); these tests
cover what the bench adds around it, on files the generator writes plus hostile lines.
"""

from __future__ import annotations

import csv

from teal_testing import settings_for

from ml.synthetic import generate
from orchestration import bench


def _lines(path) -> int:
    """Non-empty lines: each is one row to the loader, whether it parses or not."""
    return sum(1 for line in path.read_bytes().split(b"\n") if line.strip())


def test_floor_counts_every_feed_it_can_scan_even_with_malformed_lines(tmp_path):
    settings = settings_for(tmp_path)
    generate(settings.landing, tmp_path / "truth", customers=300, seed=7)
    first = sorted((settings.landing / "clickstream").glob("*.jsonl"))[0]
    # a file that opens with lines that are not objects made DuckDB's sampling read every
    # line as one JSON value, and the floor query failed
    first.write_bytes(b'[1, 2]\n"text"\n{not json\n' + first.read_bytes())

    floor = bench.scan_floor(settings, scratch=tmp_path)

    assert set(floor) == {"crm", "orders", "clickstream", "accounts", "consent", "erasure"}
    events = sum(_lines(p) for p in (settings.landing / "clickstream").glob("*.jsonl"))
    assert events == 2500  # the generator's 2,497 lines, a few of them malformed, and ours
    assert floor["clickstream"]["rows"] == events
    crm_rows = 0
    for path in (settings.landing / "crm").glob("*.csv"):
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            crm_rows += sum(1 for _ in csv.reader(handle)) - 1
    assert floor["crm"]["rows"] == crm_rows
    assert all(scan["seconds"] >= 0 and scan["copy_seconds"] > 0 for scan in floor.values())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tmp")] == []  # scratch gone


def _stage(name, seconds, rows=None, status="ok"):
    return {
        "stage": name,
        "seconds": seconds,
        "peak_mb": 100.0,
        "rows": rows,
        "rows_per_second": round(rows / seconds) if rows else None,
        "status": status,
        "started": 0,
    }


def test_ratios_compare_landing_with_its_floor_and_validation_with_its_landing():
    stages = [
        _stage("land_crm", 6.0, 1000),
        _stage("crm__customers_great_expectations", 3.0, 990),
        _stage("land_products", 1.0, 50),
        _stage("resolve_identities", 9.0, 1000),
    ]
    bench.add_ratios(stages, {"crm": {"seconds": 2.0, "rows": 1000, "copy_seconds": 4.0}})

    by_name = {s["stage"]: s for s in stages}
    assert (by_name["land_crm"]["ratio"], by_name["land_crm"]["ratio_to"]) == (3.0, "floor")
    assert by_name["land_crm"]["copy_ratio"] == 1.5
    validation = by_name["crm__customers_great_expectations"]
    assert (validation["ratio"], validation["ratio_to"]) == (0.5, "landing")
    assert "ratio" not in by_name["land_products"]  # XML: no floor
    assert "ratio" not in by_name["resolve_identities"]


def test_table_shows_each_change_against_an_earlier_bench():
    report = {
        "customers": 1000,
        "cpu_count": 2,
        "duckdb_memory_limit": "4GB",
        "duckdb_threads": 2,
        "date": "2026-12-05",
        "generate": {"seconds": 1.0, "rows": 5000},
        "floor": {"crm": {"seconds": 2.0, "rows": 1000, "copy_seconds": 4.0}},
        "stages": [
            _stage("land_crm", 6.0, 1000),
            _stage("teal_dbt_feeds", 20.0, status="failed"),
            {**_stage("process_erasure_requests", 4.0), "phases": {"tables": 1.3, "log": 0.5}},
        ],
        "job_seconds": 30.0,
        "landing_bytes": 2_000_000,
        "warehouse_bytes": 5_000_000,
        "path": "bench.json",
    }
    bench.add_ratios(report["stages"], report["floor"])
    previous = {"stages": [_stage("land_crm", 8.5, 1000)], "job_seconds": 25.0}

    lines = bench.render(report, previous).splitlines()

    land = next(line for line in lines if line.startswith("land_crm"))
    assert land.split() == [
        "land_crm", "6.0", "100", "1,000", "167", "3.0x", "floor,", "1.5x", "copy", "-2.5s"
    ]  # fmt: skip
    assert [line.split() for line in lines if line.startswith("floor:")] == [
        ["floor:", "scan", "crm", "2.0", "1,000"],
        ["floor:", "copy", "crm", "into", "a", "table", "4.0"],
    ]
    assert next(line for line in lines if line.startswith("teal_dbt_feeds (failed)"))
    erasure = next(i for i, line in enumerate(lines) if line.startswith("process_erasure"))
    assert [line.split() for line in lines[erasure + 1 : erasure + 3]] == [
        ["tables", "1.3"],
        ["log", "0.5"],
    ]  # each phase under its step, indented
    assert lines[erasure + 1].startswith("  tables")
    whole = next(line for line in lines if line.startswith("the whole job"))
    assert whole.split()[-1] == "+5.0s"
    assert lines[-1].startswith("landing files 2 MB, warehouse 5 MB")
