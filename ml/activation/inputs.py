"""The warehouse tables an export reads: the run's candidates, the profile and the attributes.

`check_inputs` refuses, with what to build, a warehouse that lacks a table or a column the
export needs; `treatment_query` selects the run's `export` candidates (never holdout or
left-out rows) with their profile and chosen attributes, every value as text, and
`treatment_chunks` streams them in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pandas as pd

from ml.activation.candidates import CANDIDATES
from ml.activation.config import ExportConfig
from ml.warehouse import table_exists

PROFILE = "marts.dim_customers"
ATTRIBUTES = "marts.dim_customer_attributes"
PROFILE_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "city",
    "postcode",
    "country_code",
    "birth_date",
    "gender",
)
OPTIONAL_PROFILE_COLUMNS = ("state",)  # Meta's st; UK data has none
TEXT_TYPES = ("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR")
CHUNK_ROWS = 100_000


def table_columns(connection: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """{column: data type} of a `schema.table`, in column order."""
    schema, name = table.split(".")
    rows = connection.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    return {column: data_type for column, data_type in rows}


def is_text(data_type: str) -> bool:
    """Whether a DuckDB data type holds text (and so may need formula escaping in a CSV)."""
    return data_type.upper().startswith(TEXT_TYPES)


def check_inputs(
    connection: duckdb.DuckDBPyConnection, config: ExportConfig
) -> tuple[list[str], dict[str, str]]:
    """The optional profile columns present and the attribute table's {column: type}.

    Raises RuntimeError, saying what to build, when the candidates, the profile or the
    attribute table is missing, or lacks a column the export needs.
    """
    for table, hint in (
        (CANDIDATES, "build the candidates (ml.activation.build_candidates) first"),
        (PROFILE, "build the customer marts (`dbt build`) first"),
        (ATTRIBUTES, "build the audience marts (`dbt build`) first"),
    ):
        if not table_exists(connection, *table.split(".")):
            raise RuntimeError(f"{table} does not exist in this warehouse; {hint}")
    profile = table_columns(connection, PROFILE)
    missing = [c for c in ("customer_id", *PROFILE_COLUMNS) if c not in profile]
    if missing:
        raise RuntimeError(
            f"{PROFILE} has no column {', '.join(missing)}; exports need "
            f"{', '.join(PROFILE_COLUMNS)} (rebuild it with `dbt build`)"
        )
    attributes = table_columns(connection, ATTRIBUTES)
    absent = [a for a in config.attributes if a not in attributes]
    if absent:
        raise RuntimeError(
            f"export {config.name!r} ({config.file}): attribute {', '.join(absent)} is in the "
            f"catalogue but not in {ATTRIBUTES}; rebuild the model or remove it from attributes"
        )
    optional = [c for c in OPTIONAL_PROFILE_COLUMNS if c in profile]
    return optional, attributes


def treatment_query(config: ExportConfig, optional: list[str]) -> str:
    """Treatment rows with every value as text: profile columns, then chosen attributes."""
    profile = [f"cast(profile.{c} as varchar) as profile__{c}" for c in PROFILE_COLUMNS]
    profile += [f"cast(profile.{c} as varchar) as profile__{c}" for c in optional]
    chosen = [f'cast(attributes."{a}" as varchar) as "attribute__{a}"' for a in config.attributes]
    select = ",\n            ".join(["candidates.customer_id", *profile, *chosen])
    return f"""
        select
            {select}
        from {CANDIDATES} as candidates
        left join {PROFILE} as profile
            on candidates.customer_id = profile.customer_id
        left join {ATTRIBUTES} as attributes
            on candidates.customer_id = attributes.customer_id
        where candidates.run_id = $run_id
            and candidates.export_name = $export_name
            and candidates.outcome = 'export'
        order by candidates.customer_id
    """


def treatment_chunks(
    connection: duckdb.DuckDBPyConnection, config: ExportConfig, run_id: str, optional: list[str]
) -> Iterator[pd.DataFrame]:
    """The run's treatment rows (`treatment_query`), streamed in non-empty chunks of at most
    CHUNK_ROWS rows, so memory is bounded by the chunk and not the audience."""
    reader = connection.sql(
        treatment_query(config, optional),
        params={"run_id": run_id, "export_name": config.name},
    ).to_arrow_reader(CHUNK_ROWS)
    for batch in reader:
        chunk = batch.to_pandas()
        if not chunk.empty:
            yield chunk


__all__ = [
    "ATTRIBUTES",
    "CHUNK_ROWS",
    "OPTIONAL_PROFILE_COLUMNS",
    "PROFILE",
    "PROFILE_COLUMNS",
    "check_inputs",
    "is_text",
    "table_columns",
    "treatment_chunks",
    "treatment_query",
]
