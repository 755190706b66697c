"""Small builders of identity-graph input shared by the identity tests."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["record_key", "source", "id_type", "id_value", "first_seen_at"]


def observations(*records: tuple[str, str, str, dict[str, str]]) -> pd.DataFrame:
    """Rows from (record_key, source, first_seen_at, {id_type: id_value}) per record."""
    rows = [
        (key, source, id_type, value, at)
        for key, source, at, ids in records
        for id_type, value in ids.items()
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["first_seen_at"] = pd.to_datetime(frame["first_seen_at"], utc=True, format="ISO8601")
    return frame


def crm(crm_id: str, at: str, **ids: str) -> tuple[str, str, str, dict[str, str]]:
    return (f"crm:{crm_id}", "crm", at, {"crm_id": crm_id, **ids})


def visit(at: str, **ids: str) -> tuple[str, str, str, dict[str, str]]:
    key = "|".join(ids.get(t, "") for t in ("anonymous_id", "user_id", "device_id"))
    return (f"visit:{key}", "clickstream", at, ids)
