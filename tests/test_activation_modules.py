"""The helpers the export modules expose (ml/activation/{destinations,csv_files,verify,runs,
folders,manifest}.py), each checked alone with exact values: no warehouse build, no pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml.activation.csv_files import CsvFile, escape_formulas
from ml.activation.destinations import match_readiness
from ml.activation.folders import exports_dir_for, swap_in, update_latest
from ml.activation.manifest import describe_file, iso_utc, write_manifest
from ml.activation.runs import transaction
from ml.activation.verify import (
    file_integrity_problems,
    file_set_problems,
    platform_row_problems,
    run_id_problems,
)

pytestmark = pytest.mark.unit


def test_escape_formulas_prefixes_risky_text_only() -> None:
    values = pd.Series(["=SUM(A1)", "+44", "-x", "@me", "\tx", "plain", None, -3.5])
    assert escape_formulas(values).tolist() == [
        "'=SUM(A1)",
        "'+44",
        "'-x",
        "'@me",
        "'\tx",
        "plain",
        None,
        -3.5,
    ]


def test_csv_file_spreadsheet_and_plain(tmp_path: Path) -> None:
    sheet = CsvFile(tmp_path / "a.csv", ["id", "name"], spreadsheet=True)
    sheet.write(pd.DataFrame({"name": ["Zoë"], "id": ["C1"]}))
    sheet.write(pd.DataFrame({"id": [], "name": []}))
    sheet.close()
    plain = CsvFile(tmp_path / "b.csv", ["id"], spreadsheet=False)
    plain.write(pd.DataFrame({"id": ["C1", "C2"]}))
    plain.close()
    assert (tmp_path / "a.csv").read_bytes() == "\ufeffid,name\r\nC1,Zoë\r\n".encode()
    assert (tmp_path / "b.csv").read_bytes() == b"id\nC1\nC2\n"
    assert (sheet.rows, plain.rows) == (1, 2)


def test_match_readiness_shares() -> None:
    counts = {"rows": 3, "valid_email": 2, "valid_phone": 1, "no_usable_identifier": 1}
    assert match_readiness(counts) == {
        "rows": 3,
        "valid_email": 2,
        "valid_email_share": 0.6667,
        "valid_phone": 1,
        "valid_phone_share": 0.3333,
        "gmail_rewrites": 0,
        "no_usable_identifier": 1,
    }
    assert match_readiness({})["valid_email_share"] == 0.0


def test_iso_utc() -> None:
    assert iso_utc(pd.Timestamp("2026-11-20 23:59:59.5").to_pydatetime()) == "2026-11-20T23:59:59Z"


def test_run_id_problems(tmp_path: Path) -> None:
    assert run_id_problems(tmp_path, {"run_id": "r1"}, None) == []
    assert run_id_problems(tmp_path, {"run_id": "r1"}, "r1") == []
    assert run_id_problems(tmp_path, {"run_id": "r1"}, "r2") == [
        f"{tmp_path / 'manifest.json'}: run_id is 'r1', not this run's 'r2'; the folder was not "
        "written by this run"
    ]


def test_file_set_problems(tmp_path: Path) -> None:
    (tmp_path / "audience.parquet").write_bytes(b"x")  # on disk, not listed
    manifest = {"consent_purpose": "analytics", "files": {"audience.csv": {}}}
    assert file_set_problems(tmp_path, manifest) == [
        f"{tmp_path / 'audience.csv'}: consent purpose analytics does not allow this file (it "
        "allows audience.parquet); delete it and write the export again",
        f"{tmp_path / 'audience.parquet'}: not listed in manifest.json, so not written by this "
        "export (its formats do not include it); delete it",
    ]


def test_file_integrity_problems(tmp_path: Path) -> None:
    path = tmp_path / "audience.csv"
    path.write_bytes(b"id\nC1\n")
    stated = describe_file(path)
    assert stated["rows"] == 1 and stated["bytes"] == 6
    assert file_integrity_problems(tmp_path, {"audience.csv": stated}) == []
    path.write_bytes(b"id\nC1\nC2\n")
    problems = file_integrity_problems(tmp_path, {"audience.csv": stated, "gone.csv": {}})
    assert [p.split(":")[1].split(" is ")[0].strip() for p in problems[:-1]] == [
        "rows",
        "sha256",
        "bytes",
    ]
    assert problems[-1] == f"{tmp_path / 'gone.csv'}: missing, but listed in manifest.json"


def test_platform_row_problems(tmp_path: Path) -> None:
    files = {"google_customer_match.csv": {"rows": 5}, "meta_custom_audience.csv": {"rows": 4}}
    assert platform_row_problems(tmp_path, {"rows": 4, "files": files}) == [
        f"{tmp_path / 'google_customer_match.csv'}: 5 rows, more than the 4 exported rows in "
        "the manifest"
    ]
    files["audience.csv"] = {"rows": 5}
    assert platform_row_problems(tmp_path, {"rows": 4, "files": files}) == []


def test_swap_in_and_latest(tmp_path: Path) -> None:
    final = exports_dir_for(tmp_path, "x", "2026-11-20")
    for content in ("old", "new"):
        staging = tmp_path / "x" / f".staging-{content}"
        staging.mkdir(parents=True)
        write_manifest(staging, {"v": content})
        swap_in(staging, final)
    assert json.loads((final / "manifest.json").read_text()) == {"v": "new"}
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["2026-11-20"]
    (tmp_path / "x" / "2026-11-19").mkdir()
    link = update_latest(tmp_path / "x")
    assert link is not None and link.readlink() == Path("2026-11-20")


def test_transaction_rolls_back_on_error() -> None:
    connection = duckdb.connect()
    connection.execute("create table t (x integer)")
    with pytest.raises(RuntimeError), transaction(connection):
        connection.execute("insert into t values (1)")
        raise RuntimeError("stop")
    with transaction(connection):
        connection.execute("insert into t values (2)")
    assert connection.execute("select x from t").fetchall() == [(2,)]
