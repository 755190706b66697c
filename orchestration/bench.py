"""Benchmark the pipeline at a chosen size: wall time and peak memory per stage.

    python -m orchestration.bench --customers 1000000 [--seed 42] [--workdir data/bench/1000000]

Each stage runs in a process of its own, so its peak resident memory is its own: generating
the sample, landing each feed, validating each feed's batch with Great Expectations, each
part of `dbt build`, identity resolution, clustering and the rule segments (as of $TEAL_AS_OF,
else the sample's last day). Results are printed as a table and written to <workdir>/bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ml.as_of import cutoff, dbt_value
from orchestration.settings import (
    AS_OF_ENV,
    DBT_EXECUTABLE,
    DBT_PROJECT_DIR,
    DBT_SELECTIONS,
    REPO_ROOT,
    quiet_telemetry,
)


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run_stage(stage: str, workdir: Path, customers: int, seed: int) -> dict:
    """Do one stage in this process; return what it measured."""
    import duckdb

    from orchestration.landing import contracts
    from orchestration.landing.loader import Loader, landed_batch

    landing, truth, warehouse = workdir / "landing", workdir / "truth", workdir / "warehouse.duckdb"
    started = time.perf_counter()
    rows = None
    if stage == "generate":
        from ml.synthetic import generate

        summary = generate(landing, truth, customers=customers, seed=seed)
        rows = sum(totals["rows_read"] for totals in summary["feeds"].values())
    elif stage.startswith("land:"):
        with duckdb.connect(str(warehouse)) as connection:
            report = Loader(connection, landing).land_feed(stage.split(":", 1)[1], progress=False)
            rows = report.total("rows_read")
    elif stage.startswith("validate:"):
        from expectations.validate import validate_batch

        feed = contracts.load()[stage.split(":", 1)[1]]
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            load_id = connection.execute(
                "select max(load_id) from landing.files where feed = ? and status = 'loaded'",
                [feed.name],
            ).fetchone()[0]
            frame, _ = landed_batch(connection, feed, load_id)
        validate_batch(feed, frame)
        rows = len(frame)
    elif stage.startswith("dbt:"):
        selection = DBT_SELECTIONS[stage.split(":", 1)[1]]
        env = {
            **os.environ,
            "TEAL_WAREHOUSE": str(warehouse),
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        }
        command = [DBT_EXECUTABLE, "build", "--quiet", "--target-path", str(workdir / "dbt_target")]
        command += ["--vars", json.dumps({"as_of": dbt_value(bench_as_of())})]
        command += ["--select", *selection["select"].split()]
        if selection.get("exclude"):
            command += ["--exclude", *selection["exclude"].split()]
        subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, check=True)
    elif stage == "identity":
        from ml.identity.pipeline import resolve_warehouse

        with duckdb.connect(str(warehouse)) as connection:
            outcome = resolve_warehouse(connection, run_id="bench")
            rows = outcome.observations
    elif stage == "clusters":
        from ml.clustering import cluster_customers

        with duckdb.connect(str(warehouse)) as connection:
            run = cluster_customers(
                connection, model_dir=workdir / "models", as_of=cutoff(bench_as_of())
            )
            rows = run.rows
    elif stage == "segments":
        from ml.segments import load_catalogue, load_segments, run_segments
        from ml.segments.catalogue import SEGMENTS_DIR

        segments = load_segments(SEGMENTS_DIR, load_catalogue())
        with duckdb.connect(str(warehouse)) as connection:
            runs = run_segments(connection, segments, bench_as_of())
            rows = sum(run.members for run in runs)
    elif stage == "erasure":
        from ml.privacy.erasure import compact_warehouse, process_erasure_requests
        from ml.privacy.secrets import check_salt

        with duckdb.connect(str(warehouse)) as connection:
            outcome = process_erasure_requests(
                connection,
                exports_root=workdir / "exports",
                salt=check_salt(connection),
                run_id="bench",
            )
            rows = outcome.rows_removed
            if outcome.anything_removed:
                from ml.identity.pipeline import resolve_warehouse

                resolve_warehouse(connection, run_id="bench-after-erasure")
        if outcome.anything_removed:
            compact_warehouse(warehouse)
    elif stage == "exports":
        from ml.activation.candidates import build_candidates, verify_candidates
        from ml.activation.config import load_exports
        from ml.activation.files import write_export
        from ml.privacy.secrets import check_salt
        from ml.segments import load_catalogue, load_segments
        from ml.segments.catalogue import SEGMENTS_DIR

        catalogue = load_catalogue()
        segments = {s.name: s for s in load_segments(SEGMENTS_DIR, catalogue)}
        rows = 0
        with duckdb.connect(str(warehouse)) as connection:
            salt = check_salt(connection)
            for export in load_exports(segments=segments, catalogue=catalogue):
                segment = segments[export.segment]
                build_candidates(connection, export, segment, "bench", bench_as_of(), salt)
                bad = verify_candidates(
                    connection, "bench", export.name, segment.consent_purpose, salt=salt
                )
                if not bad.empty:
                    raise SystemExit(f"export {export.name}: {len(bad)} rows without consent")
                result = write_export(
                    connection, export, segment, "bench", bench_as_of(), workdir / "exports"
                )
                rows += result.rows
    elif stage == "lift":
        from ml.activation.measurement import measure_campaigns

        with duckdb.connect(str(warehouse)) as connection:
            rows = len(measure_campaigns(connection, bench_as_of()))
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    return {
        "stage": stage,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_mb": round(_peak_mb(), 1),
        "rows": rows,
    }


def stages() -> list[str]:
    from orchestration.landing import contracts

    feeds = [feed.name for feed in contracts.load()]
    return [
        "generate",
        *(f"land:{f}" for f in feeds),
        *(f"validate:{f}" for f in feeds),
        "dbt:feeds",
        "identity",
        "erasure",
        "dbt:customers",
        "clusters",
        "dbt:audiences",
        "segments",
        "exports",
        "dbt:activation",
        "lift",
    ]


def bench_as_of() -> str:
    """Features and segments as of $TEAL_AS_OF, else the generator's last day."""
    from ml.synthetic.generator import DEFAULT_END

    return os.environ.get(AS_OF_ENV) or DEFAULT_END.isoformat()


def write_report(
    workdir: Path, args: argparse.Namespace, results: list[dict], failed: str | None = None
) -> dict:
    """Write <workdir>/bench.json with the stages measured so far; return it."""
    landing = workdir / "landing"
    warehouse = workdir / "warehouse.duckdb"
    report = {
        "customers": args.customers,
        "seed": args.seed,
        "landing_bytes": sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()),
        "warehouse_bytes": warehouse.stat().st_size if warehouse.exists() else 0,
        "cpu_count": os.cpu_count(),
        "stages": results,
        "failed": failed,
    }
    (workdir / "bench.json").write_text(json.dumps(report, indent=2))
    return report


def render(report: dict, workdir: Path) -> str:
    """The report as a table."""
    results = report["stages"]
    lines = [f"\n{'stage':<24}{'seconds':>10}{'peak MB':>10}{'rows':>14}"]
    for r in results:
        rows = f"{r['rows']:,}" if r["rows"] is not None else ""
        lines.append(f"{r['stage']:<24}{r['seconds']:>10.1f}{r['peak_mb']:>10.0f}{rows:>14}")
    if results:
        total = sum(r["seconds"] for r in results)
        lines.append(f"{'total':<24}{total:>10.1f}{max(r['peak_mb'] for r in results):>10.0f}")
    lines.append(
        f"\nlanding files {report['landing_bytes'] / 1e6:,.0f} MB, warehouse "
        f"{report['warehouse_bytes'] / 1e6:,.0f} MB; report in {workdir / 'bench.json'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workdir = (args.workdir or REPO_ROOT / "data" / "bench" / str(args.customers)).resolve()
    quiet_telemetry()

    if args.stage:  # a child process: one stage, result as JSON on the last line
        print(json.dumps(run_stage(args.stage, workdir, args.customers, args.seed)))
        return 0

    if workdir.exists():
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
    workdir.mkdir(parents=True)
    results: list[dict] = []
    failed = None
    for stage in tqdm(stages(), desc=f"bench {args.customers:,} customers", unit="stage"):
        command = [sys.executable, "-m", "orchestration.bench", "--stage", stage]
        command += ["--workdir", str(workdir), "--customers", str(args.customers)]
        command += ["--seed", str(args.seed)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            print(completed.stdout[-3000:], completed.stderr[-3000:], file=sys.stderr)
            failed = f"stage {stage} failed (exit {completed.returncode})"
            break
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        write_report(workdir, args, results)  # after every stage: a long run keeps what it measured
    report = write_report(workdir, args, results, failed)
    print(render(report, workdir))
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
