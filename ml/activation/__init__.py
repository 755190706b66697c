"""Activation: turn an audience into files that ad and email platforms accept unchanged.

Dagster-free. `hashing` holds the per-destination identifier rules, each a pure function from
one raw value to its normal form (or None when the value is empty or unusable, so garbage is
never hashed), plus `sha256_hex` and `map_series`, which applies a rule to a pandas column by
computing every distinct value once. Google Customer Match and Meta Custom Audiences normalise
differently (Google rewrites gmail addresses and keeps the `+` of E.164; Meta does neither), so
each destination has its own functions and its own field table (`GOOGLE_FIELDS`, `META_FIELDS`).
"""
