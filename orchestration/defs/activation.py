"""Activation assets: consent-safe audience exports per segment, holdouts and campaign lift.

1. `activation/export_candidates` decides, for every member of every exported segment, one
   outcome: exported, held out (sticky salted hash), or left out with a reason (erasure
   requested, global unsubscribe, do not sell, consent withdrawn, no consent). Its blocking
   check re-reads consent and suppression from the live views: if any row about to be exported
   lacks consent now, the check fails and no file is written.
2. `activation/export_runs` + `activation/export_members` write the files under
   data/exports/<export>/<date>/ (CSV, Google Customer Match, Meta Custom Audience, Parquet,
   manifest), move the `latest` pointer and record every exported and held-out member.
3. The dbt part `teal_dbt_activation` builds fct_campaign_outcomes; `activation/campaign_lift`
   compares treatment with holdout (lift, confidence intervals, p-values) and writes a report.
"""

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model

from ml.settings import Settings
from ml.workflow import StepError
from ml.workflow.activation import decide_candidates, measure_lift, write_exports
from orchestration.defs.audiences import SEGMENT_KEYS
from orchestration.defs.metadata import image_markdown, table_metadata
from orchestration.defs.resources import run_as_of, step_failure
from orchestration.defs.transform import dbt_part, teal_dbt_customers

CANDIDATES_KEY = dg.AssetKey(["activation", "export_candidates"])
RUNS_KEY = dg.AssetKey(["activation", "export_runs"])
MEMBERS_KEY = dg.AssetKey(["activation", "export_members"])
LIFT_KEY = dg.AssetKey(["activation", "campaign_lift"])
CHECK_CONSENT = "every_exported_row_has_consent"
CHECK_FILES = "files_match_manifest"

teal_dbt_activation = dbt_part(
    "activation",
    "Build and test the campaign outcome models over the export members and orders.",
)


@dg.multi_asset(
    name="export_candidates",
    specs=[
        dg.AssetSpec(
            CANDIDATES_KEY,
            description="activation.export_candidates: every member of every exported segment "
            "with one outcome: export, holdout, or left out with its reason.",
            group_name="activation",
            kinds={"python", "duckdb"},
            deps=[
                SEGMENT_KEYS["segment_memberships"],
                get_asset_key_for_model([teal_dbt_customers], "dim_customers"),
                get_asset_key_for_model([teal_dbt_customers], "dim_consent_ledger"),
                get_asset_key_for_model([teal_dbt_customers], "dim_suppression_list"),
            ],
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_CONSENT,
            asset=CANDIDATES_KEY,
            blocking=True,
            description="Every row about to be exported has consent for its segment's purpose "
            "now (live consent and suppression views), is not suppressed and not held out. "
            "Blocking: when it fails, no export file is written.",
        )
    ],
)
def export_candidates(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Decide who each configured export may contain, and prove it against live consent."""
    try:
        step = decide_candidates(
            settings, run_id=context.run_id, as_of=run_as_of(context, settings)
        )
    except StepError as error:
        raise step_failure(error) from error
    table = pd.DataFrame(step.counts)
    bad_rows = step.without_consent
    context.log.info(f"export candidates: {step.counts}")
    yield dg.MaterializeResult(
        asset_key=CANDIDATES_KEY,
        metadata={
            "exports": len(table),
            "outcomes": table_metadata(table),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=CANDIDATES_KEY,
        check_name=CHECK_CONSENT,
        passed=bad_rows.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_without_consent": len(bad_rows),
            # customer ids only (internal surrogate ids, no personal data)
            "examples": table_metadata(bad_rows.head(20)),
        },
    )


@dg.multi_asset(
    name="export_audiences",
    specs=[
        dg.AssetSpec(
            RUNS_KEY,
            description="activation.export_runs: one row per export and run with its folder, "
            "rows, rows left out by reason and status.",
            group_name="activation",
            kinds={"python", "duckdb", "csv", "parquet"},
            deps=[CANDIDATES_KEY],
        ),
        dg.AssetSpec(
            MEMBERS_KEY,
            description="activation.export_members: every customer exported (treatment) or "
            "held out (holdout) per export run: the basis of campaign measurement.",
            group_name="activation",
            kinds={"python", "duckdb"},
            deps=[CANDIDATES_KEY],
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_FILES,
            asset=RUNS_KEY,
            description="Every file of every export written this run has the rows and SHA-256 "
            "its manifest states, and no held-out customer is in any file.",
        )
    ],
)
def export_audiences(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Write each export's files, manifest and `latest` pointer; record members and audit."""
    try:
        step = write_exports(settings, run_id=context.run_id, as_of=run_as_of(context, settings))
    except StepError as error:
        raise step_failure(error) from error
    results, problems = step.results, step.problems
    table = pd.DataFrame(
        [
            {
                "export": r.export_name,
                "rows": r.rows,
                "holdout": r.holdout_rows,
                "left out": sum(r.left_out.values()),
                "folder": str(r.directory),
            }
            for r in results
        ]
    )
    context.log.info(f"exports written: {table.to_dict('records')}")
    yield dg.MaterializeResult(
        asset_key=RUNS_KEY,
        metadata={
            "root": str(settings.exports),
            "exports": table_metadata(table),
            "left_out": dg.MetadataValue.json({r.export_name: r.left_out for r in results}),
            "match_readiness": dg.MetadataValue.json({r.export_name: r.readiness for r in results}),
        },
    )
    yield dg.MaterializeResult(
        asset_key=MEMBERS_KEY,
        metadata={"members": int(sum(r.rows + r.holdout_rows for r in results))},
    )
    yield dg.AssetCheckResult(
        asset_key=RUNS_KEY,
        check_name=CHECK_FILES,
        passed=not problems,
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")},
    )


@dg.asset(
    key=LIFT_KEY,
    group_name="activation",
    kinds={"python", "scipy", "duckdb"},
    deps=[get_asset_key_for_model([teal_dbt_activation], "fct_campaign_outcomes")],
    description="activation.campaign_lift: conversion and revenue lift of treatment over "
    "holdout per export run, with 95% confidence intervals and p-values; report in "
    "data/reports/campaign_lift.md.",
)
def campaign_lift(context: dg.AssetExecutionContext, settings: dg.ResourceParam[Settings]):
    """Treatment versus holdout for every export run: lift, confidence intervals, p-values."""
    step = measure_lift(settings, as_of=run_as_of(context, settings))
    metadata = {
        "rows": len(step.frame),
        "report": dg.MetadataValue.md(step.report.read_text(encoding="utf-8")),
        "report_path": str(step.report),
    }
    if step.chart is not None:
        metadata["chart"] = image_markdown(step.chart, "Campaign lift")
    return dg.MaterializeResult(metadata=metadata)


defs = dg.Definitions(
    assets=[export_candidates, export_audiences, teal_dbt_activation, campaign_lift]
)
