"""Step: read the data-quality findings dbt computed (marts.fct_unresolved_references)."""

from __future__ import annotations

import pandas as pd

from ml.settings import Settings
from ml.warehouse import table_exists

FINDING_COLUMNS = [
    "reference_name",
    "model_name",
    "column_name",
    "referenced_model",
    "is_referenced_feed_present",
    "rows_checked",
    "rows_unresolved",
    "distinct_unresolved",
    "percent_unresolved",
    "example_values",
]


def unresolved_references(settings: Settings) -> pd.DataFrame:
    """One row per incoming reference check with its counts and examples (no personal values:
    dbt leaves the examples of personal references empty); empty before the first build."""
    with settings.connect() as connection:
        if not table_exists(connection, "marts", "fct_unresolved_references"):
            return pd.DataFrame(columns=FINDING_COLUMNS)
        return connection.execute(
            f"select {', '.join(FINDING_COLUMNS)} from marts.fct_unresolved_references "
            "order by reference_name"
        ).df()


def describe_finding(row) -> str:
    """One line for a person: `order_line_product: 3 of 20,125 rows (2 values) name a
    product_id not in stg_products__products, e.g. SKU-999999`."""
    examples = list(row.example_values) if row.example_values is not None else []
    shown = f", e.g. {', '.join(examples)}" if examples else ""
    absent = "" if row.is_referenced_feed_present else f" ({row.referenced_model} is empty)"
    return (
        f"{row.reference_name}: {row.rows_unresolved:,} of {row.rows_checked:,} rows "
        f"({row.distinct_unresolved:,} values) name a {row.column_name} not in "
        f"{row.referenced_model}{absent}{shown}"
    )
