"""Assign every customer to a cluster, batch by batch, and sum the cluster profiles.

The table is streamed in Arrow record batches of `batch_size` rows (customer_id and the
features only); each customer gets a cluster, a distance and an outlier flag, and each batch
is added to the profile sums (`profiles.ProfileAccumulator`): memory is bounded by the batch
and the small per-customer result (id, cluster, flag, distance), never the whole table.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ml.clustering.features import raw_matrix
from ml.clustering.inputs import as_of_filter
from ml.clustering.model import ClusterModel
from ml.clustering.profiles import ProfileAccumulator

ASSIGNED_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("cluster_id", pa.int32()),
        ("is_outlier", pa.bool_()),
        ("distance", pa.float64()),
    ]
)


def _assigned_batch(
    batch: pa.RecordBatch, cluster_ids: np.ndarray, outlier: np.ndarray, distance: np.ndarray
) -> pa.RecordBatch:
    """One batch's result: customer_id, cluster_id, is_outlier and distance."""
    return pa.RecordBatch.from_arrays(
        [
            batch.column("customer_id"),
            pa.array(cluster_ids, pa.int32()),
            pa.array(outlier, pa.bool_()),
            pa.array(distance, pa.float64()),
        ],
        names=["customer_id", "cluster_id", "is_outlier", "distance"],
    )


def assign_batches(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    model: ClusterModel,
    as_of_at: dt.datetime | None,
    batch_size: int,
    *,
    rows: int | None = None,
    progress: bool = False,
) -> tuple[pa.Table, ProfileAccumulator]:
    """Assign every customer batch by batch: (customer_id, cluster_id, is_outlier, distance).

    Reads only customer_id and the features, `batch_size` rows at a time, from an Arrow
    record batch reader; returns the per-customer result and the profile sums.
    """
    columns = ", ".join(f'"{name}"' for name in model.features)
    where, parameters = as_of_filter(as_of_at)
    reader = connection.sql(
        f"select customer_id, {columns} from {source} where {where}", params=parameters
    ).to_arrow_reader(batch_size)
    accumulator = ProfileAccumulator(len(model.cluster_ids), model.features)
    ids = np.asarray(model.cluster_ids, dtype="int32")
    parts: list[pa.RecordBatch] = []
    bar = tqdm(desc="assign clusters", unit="customer", total=rows, disable=not progress)
    try:
        for batch in reader:
            bar.update(batch.num_rows)
            if not batch.num_rows:
                continue
            raw = raw_matrix(batch, model.features)
            standardised = model.scaler.transform(raw)
            index, distance, outlier = model.assign_standardised(standardised)
            accumulator.add(index, raw, standardised, outlier)
            parts.append(_assigned_batch(batch, ids[index], outlier, distance))
    finally:
        reader.close()
        bar.close()
    schema = ASSIGNED_SCHEMA
    parts = [part.cast(schema) if part.schema != schema else part for part in parts]
    return pa.Table.from_batches(parts, schema=schema), accumulator


__all__ = ["ASSIGNED_SCHEMA", "assign_batches"]
