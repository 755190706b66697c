"""Print what the last run did: rows per feed, quarantined files, dbt and GX results, where to look.

python -m ml.summary
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

from ml.settings import REPO_ROOT, Settings
from ml.warehouse import table_exists


def _relative(path) -> str:
    """`path` relative to the repository when it is inside it, else as it is."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def feed_table(connection: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Per feed, in landing order: files landed and quarantined, rows read, loaded,
    quarantined, duplicate and erased."""
    return connection.execute(
        """
        select
            feed,
            count(*) filter (where status = 'loaded') as files_landed,
            count(*) filter (where status = 'quarantined') as files_quarantined,
            sum(rows_read), sum(rows_loaded), sum(rows_quarantined), sum(rows_duplicate),
            sum(rows_erased)
        from landing.files
        group by feed
        order by min(landed_at), feed
        """
    ).fetchall()


def feed_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The table of rows per feed, with its header and rule."""
    header = (
        f"{'feed':<12}{'files':>7}{'bad files':>10}{'rows read':>11}{'loaded':>10}"
        f"{'quarantined':>13}{'duplicate':>11}{'erased':>8}"
    )
    lines = [header, "-" * len(header)]
    for feed, files, bad, read, loaded, quarantined, duplicate, erased in feed_table(connection):
        lines.append(
            f"{feed:<12}{files:>7,}{bad:>10,}{read:>11,}{loaded:>10,}{quarantined:>13,}"
            f"{duplicate:>11,}{erased:>8,}"
        )
    return lines


def absent_feed_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The contracted feeds no file was ever landed for (their tables and marts stay empty)."""
    from ml.landing import contracts

    delivered = {
        feed
        for (feed,) in connection.execute(
            "select distinct feed from landing.files where status = 'loaded'"
        ).fetchall()
    }
    absent = [feed.name for feed in contracts.load() if feed.name not in delivered]
    if not absent:
        return []
    return [
        "",
        f"Feeds absent (no file landed; what depends on them is empty): {', '.join(absent)}",
    ]


def reference_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """References between feeds that do not resolve: kept and counted, never dropped."""
    if not table_exists(connection, "marts", "fct_unresolved_references"):
        return []
    from ml.workflow.quality import describe_finding

    findings = connection.execute(
        "select * from marts.fct_unresolved_references where rows_unresolved > 0 "
        "order by reference_name"
    ).df()
    if findings.empty:
        return ["References: every product and crm id that orders, events and consent name exists"]
    return [
        "References that do not resolve (rows kept and counted in "
        "marts.fct_unresolved_references):",
        *(f"  {describe_finding(row)}" for row in findings.itertuples()),
    ]


def quarantined_file_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The files quarantined whole, with their reasons (nothing when there are none)."""
    bad_files = connection.execute(
        "select file, reason from landing.files where status = 'quarantined' order by file"
    ).fetchall()
    if not bad_files:
        return []
    return [
        "",
        "Files quarantined whole (fix them and drop them in again; the others loaded):",
        *(f"  {file}: {reason}" for file, reason in bad_files),
    ]


def validation_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Great Expectations on each feed's latest batch, saying plainly which expectations were
    not met and whether they were errors (the suite fails) or warnings (it passes); nothing
    when no suite ran."""
    from ml.landing.loader import VALIDATION_SAMPLE_ROWS

    latest = """
        select * from landing.validations
        where (feed, validated_at) in (
            select feed, max(validated_at) from landing.validations group by feed
        )
    """
    validations = connection.execute(
        f"select count(*), count(*) filter (where success), sum(evaluated), sum(successful), "
        f"max(rows_validated) from ({latest})"
    ).fetchone()
    if not (validations and validations[0]):
        return []
    suites, passed, evaluated, successful, largest = validations
    lines = [
        "",
        f"Great Expectations: {passed} of {suites} suites passed on their feed's latest batch; "
        f"{successful} of {evaluated} expectations met (a batch over "
        f"{VALIDATION_SAMPLE_ROWS:,} rows is checked on a repeatable random sample of that many)",
    ]
    if not table_exists(connection, "landing", "validation_results"):
        return lines
    unmet = connection.execute(
        f"""
        select results.severity, results.suite, results.expectation_type, results.columns,
            results.rows_unexpected, results.rows_checked, results.success
        from landing.validation_results as results
        inner join ({latest}) as latest
            on results.load_id = latest.load_id and results.feed = latest.feed
        order by results.severity, results.suite, results.columns
        """
    ).fetchall()
    for severity, suite, expectation, columns, unexpected, checked, success in unmet:
        what = "error" if severity == "error" else "warning"
        effect = "the suite fails" if severity == "error" and not success else "reported only"
        rows = f": {unexpected:,} of {checked:,} rows" if unexpected and checked else ""
        lines.append(
            f"  {what} in {suite}: {expectation} on {columns or 'the table'}{rows} ({effect})"
        )
    return lines


def identity_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Customers, records and shared identifiers, and what the last identity run changed."""
    if not table_exists(connection, "identity", "records"):
        return []
    customers, records, unresolved, shared = connection.execute(
        """
        select
            (select count(*) from identity.customers),
            count(*),
            count(*) filter (where customer_id is null),
            (select count(*) from identity.identifiers where status = 'shared')
        from identity.records
        """
    ).fetchone()
    history = dict(
        connection.execute(
            "select event_type, count(*) from identity.history "
            "where run_id = (select max_by(run_id, event_at) from identity.history) group by all"
        ).fetchall()
    )
    changes = ", ".join(f"{n} {kind}" for kind, n in sorted(history.items())) or "no changes"
    return [
        f"Identity: {customers:,} customers from {records:,} source records "
        f"({unresolved:,} resolve to nobody: anonymous browsing or junk identifiers); "
        f"{shared:,} shared identifiers link nobody; last run: {changes}",
    ]


def dbt_lines(reports: Path) -> list[str]:
    """Models built and tests passed, failed and warned over the last dbt builds."""
    counts = dbt_counts(reports)
    if not counts:
        return []
    models = counts.get("model", {})
    tests = counts.get("test", {})
    return [
        f"dbt build: {models.get('success', 0)} models built ({sum(models.values()) - models.get('success', 0)} not), "
        f"{tests.get('pass', 0)} tests passed, {tests.get('fail', 0) + tests.get('error', 0)} failed, "
        f"{tests.get('warn', 0)} warned"
    ]


def where_to_look_lines(settings: Settings) -> list[str]:
    """The commands and paths to look at next."""
    data_docs = settings.gx_project / "gx" / "uncommitted" / "data_docs" / "local_site"
    data_docs = data_docs / "index.html"
    return [
        "",
        "Where to look next:",
        "  make quarantine     the rows and files refused, with their reasons (landing.quarantine)",
        "  make dev            the Dagster UI at http://localhost:3000: assets, checks, runs",
        "  make serve          the audience hub for marketers at http://localhost:8080",
        "  make docs           dbt docs (dbt_project/target/index.html) and Great Expectations Data Docs",
        f"                      ({_relative(data_docs)})",
        f"  the exports         {_relative(settings.exports)}/<export>/latest/ "
        "(the files its consent purpose allows, and manifest.json)",
        f"  campaign lift       {_relative(settings.reports / 'campaign_lift.md')}",
        f"  the warehouse       {_relative(settings.warehouse)} (schemas: landing, one per feed, staging, "
        "intermediate, identity, marts, ml, segments, activation, privacy)",
    ]


def render(connection: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """The whole summary of the last run, as text: feeds, quarantine, validation, identity,
    audiences, privacy and exports, dbt, and where to look next."""
    lines = [f"Teal: warehouse {_relative(settings.warehouse)}", ""]
    lines += feed_lines(connection)
    lines += absent_feed_lines(connection)
    lines += quarantined_file_lines(connection)
    lines += validation_lines(connection)
    lines += reference_lines(connection)
    lines += identity_lines(connection)
    lines += audience_lines(connection)
    lines += prediction_lines(connection, settings.models)
    lines += privacy_lines(connection)
    lines += dbt_lines(settings.reports)
    lines += where_to_look_lines(settings)
    return "\n".join(lines)


def audience_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """RFM, clusters and segment sizes of the latest run, a line or a few each."""
    lines: list[str] = []
    if table_exists(connection, "marts", "customer_rfm"):
        as_of, buckets = connection.execute(
            "select max(as_of_at), string_agg(rfm_segment || ' ' || n, ', ' order by n desc) "
            "from (select any_value(as_of_at) as as_of_at, rfm_segment, count(*) as n "
            "from marts.customer_rfm group by rfm_segment)"
        ).fetchone()
        lines.append(f"RFM as of {as_of}: {buckets}")
    if table_exists(connection, "ml", "cluster_profiles"):
        clusters = connection.execute(
            "select cluster_id, cluster_label, size from ml.cluster_profiles order by cluster_id"
        ).fetchall()
        lines.append(f"Clusters ({len(clusters)}): customers")
        lines += [f"  {c:>2} {label:<48}{size:>9,}" for c, label, size in clusters]
    if table_exists(connection, "segments", "segment_sizes"):
        rows = connection.execute(
            """
            select segment_name, members, entered, exited from segments.segment_sizes
            where snapshot_date = (select max(snapshot_date) from segments.segment_sizes)
            order by segment_name
            """
        ).fetchall()
        lines.append(f"Segments ({len(rows)}): members today (entered, left)")
        lines += [f"  {n:<34}{m:>9,}  (+{e:,}, -{x:,})" for n, m, e, x in rows]
    return lines


def prediction_lines(connection: duckdb.DuckDBPyConnection, models: Path) -> list[str]:
    """The latest predictions run against its baselines, the models it could not fit, and
    the recommenders' held-out NDCG@10 against popularity."""
    lines: list[str] = []
    if table_exists(connection, "ml", "prediction_runs"):
        row = connection.execute(
            "select metrics from ml.prediction_runs order by fitted_at desc limit 1"
        ).fetchone()
        metrics = json.loads(row[0]) if row and row[0] else {}
        parts = [
            f"{name} AUC {metrics[name]['model']['roc_auc']:.3f} "
            f"(recency alone {metrics[name]['recency_baseline']['roc_auc']:.3f})"
            for name in ("propensity", "churn")
            if name in metrics
        ]
        if "clv" in metrics:
            parts.append("CLV fitted")
        skipped = metrics.get("skipped", {})
        if skipped:
            parts.append("not fitted (columns empty): " + ", ".join(sorted(skipped)))
        if parts:
            lines.append("Predictions, held out: " + "; ".join(parts))
    if table_exists(connection, "ml", "customer_recommendations"):
        version = connection.execute(
            "select any_value(model_version) from ml.customer_recommendations"
        ).fetchone()[0]
        evaluation = models / "recommendations" / str(version) / "metrics.json"
        if version and evaluation.is_file():
            ndcg = {row["method"]: row["ndcg"] for row in json.loads(evaluation.read_text())}
            if ndcg:
                lines.append(
                    "Recommendations, NDCG@10 held out: "
                    + ", ".join(f"{method} {value:.3f}" for method, value in ndcg.items())
                )
            else:
                lines.append(
                    "Recommendations: served, not evaluated (nobody bought in the holdout)"
                )
    return lines


def privacy_lines(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Erasure, retention and the exports of the latest run."""
    lines: list[str] = []
    if table_exists(connection, "privacy", "erasure_log"):
        requests, removed = connection.execute(
            "select count(*), coalesce(sum(rows_removed), 0) from privacy.erasure_log"
        ).fetchone()
        tombstones = connection.execute("select count(*) from privacy.tombstones").fetchone()[0]
        lines.append(
            f"Erasure: {requests:,} requests processed, {removed:,} rows removed, "
            f"{tombstones:,} identifiers tombstoned"
        )
    if table_exists(connection, "privacy", "retention_log"):
        purged = connection.execute(
            "select feed, sum(rows_purged) from privacy.retention_log group by feed order by feed"
        ).fetchall()
        lines.append(
            "Retention: "
            + (", ".join(f"{feed} {n:,} rows purged" for feed, n in purged) or "nothing to purge")
        )
    if table_exists(connection, "activation", "export_runs"):
        rows = connection.execute(
            """
            select export_name, rows_exported, rows_holdout, left_out
            from activation.export_runs
            where (export_name, generated_at) in (
                select export_name, max(generated_at) from activation.export_runs group by 1)
            order by export_name
            """
        ).fetchall()
        lines.append(f"Exports ({len(rows)}): rows exported, held out, left out (by reason)")
        for name, exported, holdout, left_out in rows:
            reasons = json.loads(left_out) if isinstance(left_out, str) else (left_out or {})
            detail = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items()) if n) or "none"
            lines.append(f"  {name:<34}{exported:>9,}{holdout:>8,}  left out: {detail}")
    return lines


def dbt_counts(reports: Path) -> dict[str, dict[str, int]]:
    """Node counts by kind and status over the reports of the last dbt builds
    (<reports>/dbt_build_*.json)."""
    counts: dict[str, dict[str, int]] = {}
    for report in sorted(reports.glob("dbt_build_*.json")):
        for kind, statuses in json.loads(report.read_text())["counts"].items():
            for status, n in statuses.items():
                counts.setdefault(kind, {}).setdefault(status, 0)
                counts[kind][status] += n
    return counts


def main(settings: Settings | None = None) -> int:
    """Print the summary of the warehouse in `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    if not settings.warehouse.exists():
        print(f"No warehouse at {settings.warehouse}: run `make run` first.", file=sys.stderr)
        return 1
    with settings.connect(read_only=True) as connection:
        print(render(connection, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
