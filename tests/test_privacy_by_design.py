"""Personal data lives in the profile and the export files only: the analytics models carry the
customer id, and every personal column of the profile is tagged `pii` in its yml."""

from __future__ import annotations

import json

import pytest

# direct identifiers and contact data: never in an analytics model
PERSONAL = {
    "first_name",
    "last_name",
    "email",
    "phone",
    "birth_date",
    "street",
    "city",
    "postcode",
    "crm_id",
    "loyalty_id",
    "user_id",
    "anonymous_id",
    "device_id",
    "subject",
}
ANALYTICS_PATHS = (
    "models/marts/features/",
    "models/marts/audiences/",
    "models/marts/consent/",
    "models/marts/activation/",
    "models/intermediate/consent/",
    "models/staging/activation/",
    "models/staging/privacy/",
)
# Event-grain facts keep the pseudonymous ids of anonymous visits (cookie, device), tagged
# `pii` in their yml like marts.fct_clickstream_events; they are not customer-grain analytics.
EVENT_FACTS = {"fct_sessions"}


@pytest.fixture(scope="module")
def models(dbt_manifest) -> dict[str, dict]:
    manifest = json.loads(dbt_manifest.read_text(encoding="utf-8"))
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def test_analytics_models_carry_no_personal_data(models):
    checked = []
    for name, node in models.items():
        if not node["original_file_path"].startswith(ANALYTICS_PATHS) or name in EVENT_FACTS:
            continue
        checked.append(name)
        columns = node["columns"]
        assert not PERSONAL & set(columns), (name, PERSONAL & set(columns))
        tagged = [c for c, col in columns.items() if col.get("meta", {}).get("pii")]
        assert tagged == [], (name, tagged)
    assert {
        "customer_features",
        "dim_customer_attributes",
        "dim_consent_ledger",
        "dim_suppression_list",
        "fct_campaign_outcomes",
    } <= set(checked)


def test_the_profile_tags_every_personal_column(models):
    columns = models["dim_customers"]["columns"]
    tagged = {c for c, col in columns.items() if col.get("meta", {}).get("pii")}
    assert tagged == PERSONAL & set(columns) | {"loyalty_id"} & set(columns)
    assert {"first_name", "last_name", "email", "phone", "birth_date"} <= tagged
