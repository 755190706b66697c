"""The steps of a Teal run, as plain functions: the Dagster assets and the CLIs call these.

Each step takes the run's `Settings` (ml/settings.py), opens its own warehouse connection,
does one job and returns a small outcome object that says what it did; the Dagster asset
turns that outcome into metadata and checks, and nothing else. In the order of a run:

| step | function | asset |
|---|---|---|
| land a feed, purge its expired rows, reconcile | `landing.land_feed` | `<feed>/<table>` |
| validate the batch (Great Expectations) | `expectations.validate.validate_landed_feed` | check `great_expectations` |
| dbt, in parts | `ml.settings.DBT_SELECTIONS` (run by dagster-dbt) | `teal_dbt_<part>` |
| resolve identities | `identity.resolve_identities` | `identity/*` |
| erase requested people, resolve again, compact | `privacy.erase_requested` | `privacy/erasure_log` |
| cluster customers | `audiences.cluster` | `ml/customer_clusters` |
| rule segments | `audiences.refresh_segments` | `segments/*` |
| charts | `audiences.draw_charts` | `reports/audience_charts` |
| export candidates, proven against live consent | `activation.decide_candidates` | `activation/export_candidates` |
| export files | `activation.write_exports` | `activation/export_runs`, `export_members` |
| campaign lift | `activation.measure_lift` | `activation/campaign_lift` |

A step that cannot run because of something the user can fix (a segment file that does not
validate, features computed as of another moment) raises `StepError` with a message that says
what to do; the asset reports it as a failure without a traceback.
"""

from ml.workflow.errors import StepError

__all__ = ["StepError"]
