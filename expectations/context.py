"""The file-mode GX Data Context of the project, and the pandas assets that landed batches use.

The project lives in `expectations/gx/`. Its `great_expectations.yml` is committed and already
names one in-memory pandas data source (`teal_landing`) with a dataframe asset and a
whole-dataframe batch definition per feed, so a run never rewrites it. Everything GX writes
while validating (suites, validation definitions, checkpoints, validation results, Data Docs)
goes to `expectations/gx/uncommitted/`, which git ignores: the suites are rebuilt from the
feed contracts on every run, so the contracts stay the one source of truth.

A project root can be any directory (tests use a temporary one): when it has no
`gx/great_expectations.yml` yet, the committed one is copied there first.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import great_expectations as gx
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context import FileDataContext
from great_expectations.datasource.fluent import PandasDatasource

from ml.landing.contracts import Feed

EXPECTATIONS_DIR = Path(__file__).resolve().parent
GX_DIR = EXPECTATIONS_DIR / "gx"
CONFIG_FILE = "great_expectations.yml"
DATASOURCE = "teal_landing"
DOCS_SITE = "local_site"


def project_root_of(path: str | Path = EXPECTATIONS_DIR) -> Path:
    """The GX project root for `path`: the directory holding `gx/`; a `gx` directory itself is accepted too."""
    path = Path(path).resolve()
    if path.name == "gx" and not (path / "gx").is_dir() and (path / CONFIG_FILE).exists():
        return path.parent
    return path


def get_context(project_root: str | Path = EXPECTATIONS_DIR) -> FileDataContext:
    """The file Data Context under `project_root`, seeded with the committed config if it has none."""
    root = project_root_of(project_root)
    config = root / "gx" / CONFIG_FILE
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GX_DIR / CONFIG_FILE, config)
    context = gx.get_context(mode="file", project_root_dir=root)
    assert isinstance(context, FileDataContext)
    return context


def datasource(context: FileDataContext) -> PandasDatasource:
    """The in-memory pandas data source for landed batches, added when the config lacks it."""
    try:
        found = context.data_sources.get(DATASOURCE)
    except KeyError:
        found = context.data_sources.add_pandas(name=DATASOURCE)
    assert isinstance(found, PandasDatasource)
    return found


def batch_definition(context: FileDataContext, feed: Feed) -> BatchDefinition:
    """The feed's whole-dataframe batch definition; added (and the config rewritten) only when missing."""
    source = datasource(context)
    try:
        asset = source.get_asset(feed.name)
    except LookupError:
        asset = source.add_dataframe_asset(name=feed.name)
    try:
        return asset.get_batch_definition(feed.name)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(name=feed.name)


def docs_index(context: FileDataContext) -> Path:
    """Path of the local Data Docs site's index.html (it may not be built yet)."""
    sites = context.get_docs_sites_urls(site_name=DOCS_SITE, only_if_exists=False)
    url = sites[0]["site_url"] if sites else None
    if url:
        return Path(unquote(urlparse(url).path))
    return Path(context.root_directory) / "uncommitted" / "data_docs" / DOCS_SITE / "index.html"
