"""`audience.parquet`: the exported customers' attributes, for analysts (no direct personal data).

customer_id and every column of the attribute table, the same rows as the audience, written
by DuckDB in customer_id order.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml.activation.candidates import CANDIDATES
from ml.activation.config import ExportConfig
from ml.activation.inputs import ATTRIBUTES
from ml.activation.manifest import count_rows
from ml.sql import quote_literal


def write_parquet(
    connection: duckdb.DuckDBPyConnection, config: ExportConfig, run_id: str, path: Path
) -> int:
    """Write customer_id and every attribute column of the treatment rows, ordered by
    customer_id, to `path`; return the rows written."""
    connection.execute(
        f"""
        copy (
            select candidates.customer_id, attributes.* exclude (customer_id)
            from {CANDIDATES} as candidates
            left join {ATTRIBUTES} as attributes
                on candidates.customer_id = attributes.customer_id
            where candidates.run_id = $run_id
                and candidates.export_name = $export_name
                and candidates.outcome = 'export'
            order by candidates.customer_id
        ) to {quote_literal(path)} (format parquet)
        """,
        {"run_id": run_id, "export_name": config.name},
    )
    return count_rows(path)


__all__ = ["write_parquet"]
