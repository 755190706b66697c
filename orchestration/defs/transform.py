"""dbt models as Dagster assets: sources meet the landing assets by key, tests become checks."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from ml.settings import DBT_SELECTIONS, Settings
from orchestration.defs.resources import dbt_project, run_as_of

if not dbt_project.manifest_path.exists():
    # no subprocess at import: the manifest is made by `make` (run, dev, test) or `dbt parse`
    raise FileNotFoundError(
        f"{dbt_project.manifest_path} is missing: run `make run` (or `cd dbt_project && "
        "../.venv/bin/dbt parse`) once, so the code location can read the dbt project"
    )


class TealTranslator(DagsterDbtTranslator):
    """Group dbt models by their folder under models/ (staging, intermediate, marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "landing"
        if dbt_resource_props["resource_type"] == "seed":
            return "seeds"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


# dbt tests on sources (accepted values of the landed text, ...) become checks of the landing
# asset they test, next to its reconciliation and Great Expectations checks.
TRANSLATOR = TealTranslator(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True))


def build(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: Settings, report: str):
    """`dbt build` of the selected nodes as of the run's as_of, on the settings' warehouse with
    its DuckDB limits (profiles.yml reads them from the vars); writes <reports>/<report>.json;
    fails on any error."""
    variables = json.dumps(settings.dbt_vars(run_as_of(context, settings)))
    # one target folder per warehouse, kept between parts and runs: dbt parses the project
    # in full once and then only what changed (a new as_of or warehouse parses it in full)
    invocation = dbt.cli(
        ["build", "--vars", variables],
        context=context,
        raise_on_error=False,
        target_path=settings.dbt_target,
    )
    yield from invocation.stream()
    results = invocation.get_artifact("run_results.json")
    summary = summarise_run_results(results)
    path = settings.reports / f"{report}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    context.log.info(f"dbt build ({report}): {summary['counts']}")
    if not invocation.is_successful():
        failed = [r["unique_id"] for r in summary["failures"]]
        raise dg.Failure(
            description=f"dbt build failed: {', '.join(failed[:10])}",
            metadata={"failures": dg.MetadataValue.json(summary["failures"])},
        )


def dbt_part(part: str, description: str, after: dg.AssetKey | None = None) -> dg.AssetsDefinition:
    """The dbt models of one part of DBT_SELECTIONS as one multi-asset `teal_dbt_<part>` whose
    step runs `dbt build` of that selection (see ml/settings.py for why the project is split).

    `after`: a Python asset every model of the part waits for (not only those that read it),
    so Dagster runs the part as one step after it rather than splitting it around it.
    """
    selection = DBT_SELECTIONS[part]

    def part_assets(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: dg.ResourceParam[Settings]
    ):
        yield from build(context, dbt, settings, f"dbt_build_{part}")

    part_assets.__doc__ = description  # the step's description in the UI
    assets = dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=TRANSLATOR,
        select=selection["select"],
        exclude=selection.get("exclude"),
        name=f"teal_dbt_{part}",
    )(part_assets)
    if after is None:
        return assets

    def wait_for_after(spec: dg.AssetSpec) -> dg.AssetSpec:
        if any(dep.asset_key == after for dep in spec.deps):
            return spec
        return spec.merge_attributes(deps=[after])

    return assets.map_asset_specs(wait_for_after)


# Erasure (orchestration/defs/privacy.py) sits between the subjects part and the customer
# models, which are rebuilt from what it leaves.
ERASURE_KEY = dg.AssetKey(["privacy", "erasure_log"])


teal_dbt_feeds = dbt_part(
    "feeds",
    "Build and test the staging models of the feeds and the identifiers identity resolution reads.",
)
# Its models read the identity tables (dbt sources keyed like the identity assets), so the part
# runs after identity; erasure reads int_subjects_resolved, so it runs before erasure.
teal_dbt_subjects = dbt_part(
    "subjects",
    "Build and test the identity staging views and int_subjects_resolved, the one subject -> "
    "customer resolution that erasure, consent and suppression read.",
)
teal_dbt_customers = dbt_part(
    "customers",
    "Build and test the customer models over the identity tables: golden record, facts, "
    "summary, sessions, features, RFM, the consent ledger and the suppression list.",
    after=ERASURE_KEY,
)
teal_dbt_audiences = dbt_part(
    "audiences", "Build and test the audience model over features, RFM and the ML clusters."
)


def summarise_run_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of built models and passed tests from dbt's run_results.json."""
    counts: dict[str, dict[str, int]] = {}
    failures = []
    for result in results.get("results", []):
        kind = result["unique_id"].split(".")[0]
        status = result["status"]
        counts.setdefault(kind, {}).setdefault(status, 0)
        counts[kind][status] += 1
        if status in ("error", "fail"):
            failures.append(
                {
                    "unique_id": result["unique_id"],
                    "status": status,
                    "message": result.get("message"),
                }
            )
    return {
        "generated_at": results.get("metadata", {}).get("generated_at"),
        "counts": counts,
        "failures": failures,
    }


defs = dg.Definitions(
    assets=[teal_dbt_feeds, teal_dbt_subjects, teal_dbt_customers, teal_dbt_audiences]
)
