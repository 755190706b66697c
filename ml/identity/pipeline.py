"""Identity resolution over the warehouse: read the observed identifiers, link, assign stable ids, write.

    from ml.identity.pipeline import resolve_warehouse
    outcome = resolve_warehouse(connection, run_id="...")

Steps, all on one DuckDB connection (Dagster calls this from orchestration/defs/identity.py):

1. read the CRM person records of `staging.stg_crm__customers` and score those that share no
   strong identifier with the Fellegi-Sunter matcher (`ml.identity.matching`), keeping the
   accepted links as extra edges;
2. read `intermediate.int_identifiers_observed` (every identifier of every source record);
3. link everything in the identity graph with the merge protection of `identity.yml`
   (`ml.identity.graph`);
4. give every customer cluster its stable id, keeping last run's ids (`ml.identity.stable_ids`);
5. replace the `identity.*` tables and append to `identity.history`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml.identity import config as identity_config
from ml.identity import graph as identity_graph
from ml.identity import matching, stable_ids
from ml.memory import release_unused
from ml.warehouse import read_frame, registered, table_exists

SCHEMA = "identity"
OBSERVATIONS = "intermediate.int_identifiers_observed"
CRM_RECORDS = "staging.stg_crm__customers"

# CRM columns in the matcher's standard names.
PERSON_COLUMNS = {
    "crm_id": "record_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone_e164": "phone",
    "birth_date": "date_of_birth",
    "gender": "gender",
    "street": "street",
    "city": "city",
    "postcode": "postcode",
    "country_code": "country",
}

HISTORY_DDL = f"""
create table if not exists {SCHEMA}.history (
    event_at timestamp not null,
    run_id varchar not null,
    event_type varchar not null,
    customer_id varchar not null,
    other_customer_id varchar,
    reason varchar
)
"""

# The columns of each table here that name a person (an identifier, a text or key that embeds
# one, a customer id): erasure (ml/privacy/personal_columns.py) deletes a row when one of them
# names an erased person. A table with none holds no personal data.
PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    f"{SCHEMA}.identifiers": ("id_value", "cluster_id", "customer_id"),
    f"{SCHEMA}.records": ("record_key", "cluster_id", "customer_id"),
    f"{SCHEMA}.customers": ("customer_id", "cluster_id", "anchor"),
    f"{SCHEMA}.history": ("customer_id", "other_customer_id", "reason"),
    f"{SCHEMA}.evidence": ("id_value_l", "id_value_r", "record_key"),
    f"{SCHEMA}.refused_merges": (
        "id_value_l",
        "id_value_r",
        "record_key",
        "cluster_id_l",
        "cluster_id_r",
    ),
    f"{SCHEMA}.shared_identifiers": ("id_value",),
    f"{SCHEMA}.match_links": ("record_id_l", "record_id_r"),  # crm ids
    f"{SCHEMA}.match_model": (),
}


@dataclass
class IdentityOutcome:
    """What one identity run did."""

    run_id: str
    observations: int
    records: int
    records_unresolved: int
    customers: int
    match_links: int
    events: dict[str, int] = field(default_factory=dict)
    shared: int = 0
    never_linked: int = 0
    refused: int = 0
    match_report: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for Dagster metadata and JSON)."""
        return dict(self.__dict__)


def read_inputs(connection: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The observed identifiers and the CRM person records in the matcher's standard columns."""
    return read_observations(connection), read_people(connection)


def read_observations(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every identifier of every source record (millions of rows: read through Arrow)."""
    return read_frame(
        connection,
        f"select record_key, source, id_type, id_value, first_seen_at from {OBSERVATIONS}",
    )


def read_people(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The CRM person records in the matcher's standard columns, birth dates as text."""
    columns = ", ".join(f"{source} as {target}" for source, target in PERSON_COLUMNS.items())
    people = read_frame(connection, f"select {columns} from {CRM_RECORDS} order by crm_id")
    people["date_of_birth"] = people["date_of_birth"].astype("string")
    return people


def previous_mapping(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """Last run's identifier -> customer id, or None on a first run (or a full rebuild)."""
    if not table_exists(connection, SCHEMA, "identifiers"):
        return None
    return read_frame(
        connection,
        f"select id_type, id_value, customer_id from {SCHEMA}.identifiers "
        "where customer_id is not null",
    )


def match_links(people: pd.DataFrame, settings: Any = None, *, progress: bool = False):
    """The matcher's accepted CRM-to-CRM links as graph edges, and its scored pairs and report."""
    resolution = matching.resolve_entities(people, settings, progress=progress)
    return link_edges(resolution.links), resolution


def stored_match_links(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The matcher's scored pairs as the last identity run wrote them, only those between CRM
    records still in the warehouse (None when no run wrote them)."""
    if not table_exists(connection, SCHEMA, "match_links"):
        return None
    return read_frame(
        connection,
        f"select * from {SCHEMA}.match_links as links "
        f"where cast(links.record_id_l as varchar) in (select crm_id::varchar from {CRM_RECORDS}) "
        f"and cast(links.record_id_r as varchar) in (select crm_id::varchar from {CRM_RECORDS})",
    )


def link_edges(links: pd.DataFrame) -> pd.DataFrame:
    """The accepted links of the matcher's scored pairs as graph edges between CRM ids."""
    accepted = links[links["is_match"].astype(bool)]
    return pd.DataFrame(
        {
            "id_type_l": "crm_id",
            "id_value_l": accepted["record_id_l"].astype(str),
            "id_type_r": "crm_id",
            "id_value_r": accepted["record_id_r"].astype(str),
            "rule": "probabilistic",
            "score": accepted["match_weight"].astype(float),
        }
    )


def _naive_utc(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (every `_at` column of the warehouse means UTC)."""
    values = pd.to_datetime(values, utc=True)
    return values.dt.tz_convert("UTC").dt.tz_localize(None)


def _replace(connection: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Replace identity.<table> with the frame."""
    with registered(connection, "_frame", frame):
        connection.execute(f"create or replace table {SCHEMA}.{table} as select * from _frame")


def resolve_warehouse(
    connection: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    config_path: Path | None = None,
    match_settings: Any = None,
    now: dt.datetime | None = None,
    progress: bool = False,
    reuse_links: bool = False,
) -> IdentityOutcome:
    """Run identity resolution over the warehouse and write the identity tables (see module
    docstring).

    `reuse_links`: take the matcher's pairs from the last run's `identity.match_links` (those
    between CRM records still in the warehouse) instead of scoring the records again. Erasure
    uses it once it has deleted people: every remaining pair was scored on the two records'
    own fields, so only the graph has to be built again without the erased ones."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    config = (
        identity_config.load_config(config_path) if config_path else identity_config.load_config()
    )
    # one input at a time, each let go once used: at a million customers the matcher's working
    # set, the 14 million observations and the graph's arrays would not fit beside each other
    stored = stored_match_links(connection) if reuse_links else None
    if stored is not None:
        links, model = stored, None
        edges = link_edges(links)
        match_report: dict[str, Any] = {
            "links_reused": True,
            "pairs": len(links),
            "links_accepted": len(edges),
        }
    else:
        people = read_people(connection)
        edges, resolution = match_links(people, match_settings, progress=progress)
        links, model = resolution.links, resolution.model
        match_report = resolution.report.to_dict()
        del people, resolution
    release_unused()
    # the observations frame is handed over, not kept: the graph lets its columns go once used
    graph = identity_graph.resolve_graph(
        read_observations(connection), edges, config, progress=progress
    )
    observed = int(graph.stats["observations"])
    match_count = len(edges)
    del edges
    release_unused()
    previous = previous_mapping(connection)
    assignment = stable_ids.assign_customer_ids(graph, previous, run_id=run_id, now=now)
    del previous
    customer_of_cluster = assignment.customers[["cluster_id", "customer_id"]].drop_duplicates(
        "cluster_id"
    )
    # the graph's node and record frames give way to their copies with customer ids
    graph.nodes = identifiers = graph.nodes.merge(
        assignment.mapping, on=["id_type", "id_value"], how="left"
    )
    graph.records = records = graph.records.merge(customer_of_cluster, on="cluster_id", how="left")
    release_unused()

    connection.execute(f"create schema if not exists {SCHEMA}")
    connection.execute("begin transaction")
    try:
        identifiers["first_seen_at"] = _naive_utc(identifiers["first_seen_at"])
        _replace(
            connection,
            "identifiers",
            identifiers[
                ["id_type", "id_value", "cluster_id", "customer_id", "status", "first_seen_at"]
            ],
        )
        _replace(
            connection, "records", records[["record_key", "source", "cluster_id", "customer_id"]]
        )
        _replace(
            connection,
            "customers",
            assignment.customers.rename(columns={"identifiers": "identifier_count"}).assign(
                first_seen_at=lambda frame: _naive_utc(frame["first_seen_at"])
            ),
        )
        _replace(connection, "evidence", graph.evidence)
        _replace(connection, "refused_merges", graph.refused)
        _replace(connection, "shared_identifiers", graph.shared)
        _replace(connection, "match_links", links)
        if model is not None:  # reused links keep the model that scored them
            _replace(
                connection,
                "match_model",
                pd.DataFrame({"run_id": [run_id], "model": [model.to_json()]}),
            )
        connection.execute(HISTORY_DDL)
        if len(assignment.events):
            events_frame = assignment.events.assign(
                event_at=_naive_utc(assignment.events["event_at"])
            )
            with registered(connection, "_events", events_frame):
                connection.execute(
                    f"insert into {SCHEMA}.history select event_at, run_id, event_type, "
                    "customer_id, other_customer_id, reason from _events"
                )
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise

    record_count, unresolved = len(records), int(records["customer_id"].isna().sum())
    del identifiers, records
    graph.nodes = graph.nodes.iloc[:0]  # written: let the rows go before the next step
    graph.records = graph.records.iloc[:0]
    release_unused()
    events = (
        assignment.events["event_type"].value_counts().to_dict() if len(assignment.events) else {}
    )
    return IdentityOutcome(
        run_id=run_id,
        observations=observed,
        records=record_count,
        records_unresolved=unresolved,
        customers=len(assignment.customers),
        match_links=match_count,
        events={str(k): int(v) for k, v in events.items()},
        shared=len(graph.shared),
        never_linked=len(graph.never_linked),
        refused=len(graph.refused),
        match_report=match_report,
    )
