"""Landing: feed files into the warehouse, checked against their contract (feeds.yml).

| module | its one job |
|---|---|
| `contracts` | read feeds.yml (and a user's feeds.local.yml) into `Feed`s; render what derives from it |
| `loader` | `Loader`: which files are new, in batches, each in one transaction with its ledger rows |
| `batch` | one batch through the contract: read, normalise, check, erased and duplicate rows |
| `readers` | files to rows in DuckDB (CSV, JSON Lines, Parquet, Merchant XML; encodings, gzip) |
| `normalised` | email, phone and reference columns, once per distinct value |
| `checks` | the contract's rules as SQL, and masking personal values in reasons |
| `tombstones` | recognising rows of erased people |
| `ledger` | the ledger's tables (files, quarantine, duplicates, erased rows, removals) |
| `reconcile` | does every landed file still add up? |
| `check` | the dry run of one file; `quarantine`: what landing refused |

`python -m ml.landing land|check|quarantine` (ml/landing/__main__.py).
"""
