"""Privacy: the salt, erasure with tombstones, retention and the audit log (no Dagster here)."""
