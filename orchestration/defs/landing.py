"""Landing assets: one per feed, keyed like the dbt source it feeds, with its checks.

Each asset lands the new files of its feed (orchestration/landing/loader.py), purges rows past
the feed's retention, then checks the batch: the files reconcile, the Great Expectations suite
passes, and nothing was quarantined (a warning, with the reasons, when something was).
"""

import dagster as dg
import pandas as pd

from orchestration.defs.resources import run_as_of
from orchestration.landing import contracts
from orchestration.landing.contracts import Feed
from orchestration.landing.loader import FeedReport, Loader, ident, landed_batch, reconciliation
from orchestration.settings import landing_path, quiet_telemetry

quiet_telemetry()

CHECK_RECONCILES = "reconciles"
CHECK_EXPECTATIONS = "great_expectations"
CHECK_QUARANTINE = "nothing_quarantined"


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = "\n".join(
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    )
    return header + rows


def table_schema(feed: Feed) -> dg.TableSchema:
    docs = {c.name: c.description for c in feed.columns}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, "varchar", description=docs.get(name))
            for name in feed.landed_columns
        ]
    )


def landing_checks(feed: Feed, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            CHECK_RECONCILES,
            asset=key,
            description="Every file: rows read = loaded + quarantined + duplicate + erased, and "
            "the tables hold exactly those rows, less those erasure or retention removed later.",
        ),
        dg.AssetCheckSpec(
            CHECK_EXPECTATIONS,
            asset=key,
            description=f"The Great Expectations suite {feed.name}_landing passes on the rows landed by this run.",
        ),
        dg.AssetCheckSpec(
            CHECK_QUARANTINE,
            asset=key,
            description="No row or file of this run went to landing.quarantine (a warning: the rest still loads).",
        ),
    ]


def build_landing_asset(feed: Feed) -> dg.AssetsDefinition:
    key = dg.AssetKey([feed.name, feed.table])

    @dg.multi_asset(
        name=f"land_{feed.name}",
        specs=[
            dg.AssetSpec(
                key,
                description=f"Lands data/landing/{feed.name}/ into {feed.qualified_table}. {feed.description}",
                group_name="landing",
                kinds={"python", "duckdb"},
                metadata={
                    "dagster/column_schema": table_schema(feed),
                    "contract": f"orchestration/landing/feeds.yml#{feed.name}",
                },
            )
        ],
        check_specs=landing_checks(feed, key),
        required_resource_keys={"warehouse"},
    )
    def land(context: dg.AssetExecutionContext):
        """Land the feed's new files, then reconcile and validate the batch."""
        with context.resources.warehouse.get_connection() as connection:
            loader = Loader(connection, landing_path())
            report = loader.land_feed(feed.name, progress=False)
            purged = _purge_expired(context, connection, feed)
            yield from _results(context, connection, feed, key, report, purged)

    return land


def _purge_expired(context, connection, feed: Feed) -> dict | None:
    """Delete the feed's landed rows past its retention (feeds.yml `retention:`), logged in
    privacy.retention_log; None for a feed kept without limit."""
    if feed.retention is None:
        return None
    from ml.privacy.retention import purge_expired

    (purged,) = purge_expired(connection, [feed], run_as_of(context), run_id=context.run_id)
    context.log.info(
        f"{feed.name}: retention {feed.retention.days} days on {feed.retention.column}: "
        f"{purged['rows_purged']} rows older than {purged['cutoff']} purged"
    )
    return purged


def _results(
    context, connection, feed: Feed, key: dg.AssetKey, report: FeedReport, purged: dict | None
):
    totals = report.as_dict()
    files = pd.DataFrame(
        totals["files"],
        columns=[
            "file",
            "status",
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
            "rows_duplicate",
            "rows_erased",
            "reason",
        ],
    )
    row_count = connection.execute(
        f"select count(*) from {ident(feed.name)}.{ident(feed.table)}"
    ).fetchone()[0]
    for bad in report.quarantined_files:
        context.log.warning(f"{bad.file}: the whole file was quarantined: {bad.reason}")
    context.log.info(
        f"{feed.name}: {totals['files_landed']} file(s) landed, {totals['files_quarantined']} quarantined, "
        f"{totals['rows_loaded']} rows loaded, {totals['rows_quarantined']} quarantined, {totals['rows_duplicate']} duplicate"
    )
    yield dg.MaterializeResult(
        asset_key=key,
        metadata={
            "dagster/row_count": row_count,
            "load_id": report.load_id,
            "files_landed": totals["files_landed"],
            "files_quarantined": totals["files_quarantined"],
            "files_skipped": totals["files_skipped"],
            "rows_read": totals["rows_read"],
            "rows_loaded": totals["rows_loaded"],
            "rows_quarantined": totals["rows_quarantined"],
            "rows_duplicate": totals["rows_duplicate"],
            "rows_erased": totals["rows_erased"],
            "rows_purged_by_retention": purged["rows_purged"] if purged else 0,
            "retention": f"{feed.retention.days} days on {feed.retention.column}"
            if feed.retention
            else "kept without limit",
            "files": dg.MetadataValue.md(_markdown(files)),
        },
    )

    recon = reconciliation(connection, feed)
    broken = recon[~recon["reconciles"]]
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_RECONCILES,
        passed=broken.empty,
        metadata={
            "files_checked": len(recon),
            "files_not_reconciling": dg.MetadataValue.md(_markdown(broken)),
        },
    )

    yield _expectations_result(connection, feed, key, report)

    quarantined = connection.execute(
        "select message from landing.quarantine where load_id = ? and feed = ? order by file, row_number limit 20",
        [report.load_id, feed.name],
    ).fetchall()
    count = totals["rows_quarantined"] + totals["files_quarantined"]
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_QUARANTINE,
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_quarantined": totals["rows_quarantined"],
            "files_quarantined": totals["files_quarantined"],
            "first_reasons": dg.MetadataValue.md(
                "\n".join(f"- {m}" for (m,) in quarantined) or "(none)"
            ),
            "see": "select * from landing.quarantine where load_id = '" + report.load_id + "'",
        },
    )


def _expectations_result(
    connection, feed: Feed, key: dg.AssetKey, report: FeedReport
) -> dg.AssetCheckResult:
    from expectations.validate import validate_batch

    batch, total = landed_batch(connection, feed, report.load_id)
    if batch.empty:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=CHECK_EXPECTATIONS,
            passed=True,
            metadata={"rows_validated": 0, "note": "no new rows in this run"},
        )
    result = validate_batch(feed, batch)
    connection.execute(
        "insert into landing.validations values (?, ?, ?, ?, ?, ?, ?, ?, now()::timestamp)",
        [
            report.load_id,
            feed.name,
            f"{feed.name}_landing",
            result.success,
            len(batch),
            result.evaluated,
            result.successful,
            result.warnings,
        ],
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_EXPECTATIONS,
        passed=result.success,
        metadata={
            "rows_validated": len(batch),
            "rows_in_batch": total,
            "expectations_evaluated": result.evaluated,
            "expectations_successful": result.successful,
            "failed": dg.MetadataValue.md(
                "\n".join(f"- {r.describe()}" for r in result.failures) or "(none)"
            ),
            "warnings": dg.MetadataValue.md(
                "\n".join(f"- {r.describe()}" for r in result.flagged) or "(none)"
            ),
            "data_docs": dg.MetadataValue.path(str(result.data_docs_index))
            if result.data_docs_index
            else "",
        },
    )


landing_assets = [build_landing_asset(feed) for feed in contracts.load()]

defs = dg.Definitions(assets=landing_assets)
