"""Landing assets: one per feed, keyed like the dbt source it feeds, with its checks.

Each asset lands the new files of its feed and purges rows past the feed's retention
(ml.workflow.landing), then checks that every file reconciles and that nothing was
quarantined (a warning, with the first reasons). The Great Expectations suite runs as a check
of its own (its own step, so its time shows apart from landing's) on the rows this run landed.
Every load is stamped with the Dagster run id, so a load in `landing.files` names its run.
"""

import dagster as dg
import pandas as pd

from ml.landing import contracts
from ml.landing.contracts import Feed
from ml.settings import Settings
from ml.workflow.landing import LandingStep, land_feed
from orchestration.defs.metadata import table_metadata
from orchestration.defs.resources import run_as_of

CHECK_RECONCILES = "reconciles"
CHECK_EXPECTATIONS = "great_expectations"
CHECK_QUARANTINE = "nothing_quarantined"
FILE_COLUMNS = [
    "file",
    "status",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
    "rows_erased",
    "reason",
]


def landing_key(feed: Feed) -> dg.AssetKey:
    return dg.AssetKey([feed.name, feed.table])


def table_schema(feed: Feed) -> dg.TableSchema:
    docs = {c.name: c.description for c in feed.columns}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, "varchar", description=docs.get(name))
            for name in feed.landed_columns
        ]
    )


def build_landing_asset(feed: Feed) -> dg.AssetsDefinition:
    key = landing_key(feed)

    @dg.multi_asset(
        name=f"land_{feed.name}",
        specs=[
            dg.AssetSpec(
                key,
                description=f"Lands data/landing/{feed.name}/ into {feed.qualified_table}. "
                f"{feed.description}",
                group_name="landing",
                kinds={"python", "duckdb"},
                metadata={
                    "dagster/column_schema": table_schema(feed),
                    "contract": f"ml/landing/feeds.yml#{feed.name}",
                },
            )
        ],
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_RECONCILES,
                asset=key,
                description="Every file: rows read = loaded + quarantined + duplicate + erased, "
                "and the tables hold exactly those rows, less those erasure or retention "
                "removed later.",
            ),
            dg.AssetCheckSpec(
                CHECK_QUARANTINE,
                asset=key,
                description="No row or file of this run went to landing.quarantine "
                "(a warning: the rest still loads).",
            ),
        ],
    )
    def land(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
        """Land the feed's new files, purge expired rows, then reconcile the feed's files."""
        step = land_feed(
            settings,
            feed.name,
            load_id=context.run_id,
            as_of=run_as_of(context, settings),
            run_id=context.run_id,
        )
        yield from landing_results(context, feed, key, step)

    return land


def landing_results(context, feed: Feed, key: dg.AssetKey, step: LandingStep):
    totals = step.report.as_dict()
    # file names, row numbers, fields and kinds of fault only: reasons are masked
    # (ml/landing/checks.py mask_reason), a whole file's reason names no value
    for bad in step.report.quarantined_files:
        context.log.warning(f"{bad.file}: the whole file was quarantined: {bad.reason}")
    if step.purged is not None:
        context.log.info(
            f"{feed.name}: retention {feed.retention.days} days on {feed.retention.column}: "
            f"{step.purged['rows_purged']} rows older than {step.purged['cutoff']} purged"
        )
    context.log.info(
        f"{feed.name}: {totals['files_landed']} file(s) landed, "
        f"{totals['files_quarantined']} quarantined, {totals['rows_loaded']} rows loaded, "
        f"{totals['rows_quarantined']} quarantined, {totals['rows_duplicate']} duplicate"
    )
    yield dg.MaterializeResult(
        asset_key=key,
        metadata={
            "dagster/row_count": step.rows_in_table,
            "load_id": step.report.load_id,
            "files_landed": totals["files_landed"],
            "files_quarantined": totals["files_quarantined"],
            "files_skipped": totals["files_skipped"],
            "rows_read": totals["rows_read"],
            "rows_loaded": totals["rows_loaded"],
            "rows_quarantined": totals["rows_quarantined"],
            "rows_duplicate": totals["rows_duplicate"],
            "rows_erased": totals["rows_erased"],
            "rows_purged_by_retention": step.purged["rows_purged"] if step.purged else 0,
            "retention": f"{feed.retention.days} days on {feed.retention.column}"
            if feed.retention
            else "kept without limit",
            "files": table_metadata(pd.DataFrame(totals["files"], columns=FILE_COLUMNS)),
            **(
                {
                    "files_archived": len(step.archived),
                    "archive_days_removed": len(step.archive_days_removed),
                }
                if step.archived or step.archive_days_removed
                else {}
            ),
        },
    )
    broken = step.files_not_reconciling
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_RECONCILES,
        passed=broken.empty,
        metadata={
            "files_checked": len(step.reconciliation),
            "files_not_reconciling": table_metadata(broken),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_QUARANTINE,
        passed=step.quarantined == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_quarantined": totals["rows_quarantined"],
            "files_quarantined": totals["files_quarantined"],
            "first_reasons": dg.MetadataValue.md(
                "\n".join(f"- {m}" for m in step.quarantine_examples) or "(none)"
            ),
            "see": f"make quarantine FEED={feed.name}",
        },
    )


def build_expectations_check(feed: Feed) -> dg.AssetChecksDefinition:
    key = landing_key(feed)

    @dg.asset_check(
        asset=key,
        name=CHECK_EXPECTATIONS,
        description=f"The Great Expectations suite {feed.name}_landing passes on the rows "
        "landed by this run.",
    )
    def great_expectations(
        context: dg.AssetCheckExecutionContext, settings: dg.ResourceParam[Settings]
    ):
        from expectations.validate import validate_landed_feed

        landed = validate_landed_feed(settings, feed.name, context.run.run_id)
        result = landed.validation
        if result.skipped:
            return dg.AssetCheckResult(
                passed=True, metadata={"rows_validated": 0, "note": "no new rows in this run"}
            )
        return dg.AssetCheckResult(
            passed=result.success,
            metadata={
                "rows_validated": result.rows,
                "rows_in_batch": landed.rows_in_batch,
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

    return great_expectations


FEEDS = list(contracts.load())
landing_assets = [build_landing_asset(feed) for feed in FEEDS]
expectations_checks = [build_expectations_check(feed) for feed in FEEDS]

defs = dg.Definitions(assets=landing_assets, asset_checks=expectations_checks)
