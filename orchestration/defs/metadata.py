"""How Teal's outcomes look in the Dagster UI: markdown tables and embedded charts."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table ("(none)" when empty); pipes in values are escaped."""
    if frame.empty:
        return "(none)"
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = "\n".join(
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in frame.itertuples(index=False)
    )
    return header + rows


def table_metadata(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame))


def image_markdown(path: Path, title: str) -> dg.MetadataValue:
    """A PNG embedded in markdown metadata, so the Dagster UI shows the picture itself."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return dg.MetadataValue.md(
        f"**{title}** (`{path}`)\n\n![{title}](data:image/png;base64,{data})"
    )
