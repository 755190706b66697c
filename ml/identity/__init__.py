"""Identity resolution: one customer id per real person.

Dagster-free. `graph` links records that share strong identifiers (with merge protection from
`identity.yml`), `matching` scores the records that share none (Fellegi-Sunter), `stable_ids`
keeps customer ids stable across runs and records merges and splits.
"""
