"""The catalogue of fields a segment rule may use, read from the attribute model's dbt yml.

The attribute table (`marts.dim_customer_attributes`) is documented in
`dbt_project/models/marts/audiences/_audiences__models.yml`; every column there has a `name`,
a `description` and a `data_type`. That yml is the single list of what analysts may filter
on: a column added to the model and its yml becomes usable in segments, nothing else does.

Each SQL data type maps to the kind of value a rule compares it with:

    integer, bigint, smallint, tinyint, hugeint, double, float, real, decimal(p, s), numeric
                                                    -> number   (30, 4.5)
    varchar, text, string, char                     -> text     ('London')
    boolean, bool                                   -> boolean  (true, false)
    date                                            -> date     (2026-11-20)
    timestamp, datetime, timestamptz                -> timestamp ('2026-11-20 06:30:00')
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.settings import REPO_ROOT
from ml.yamlfile import YamlFileError, described, read_yaml

DEFAULT_CATALOGUE = (
    REPO_ROOT / "dbt_project" / "models" / "marts" / "audiences" / "_audiences__models.yml"
)
DEFAULT_MODEL = "dim_customer_attributes"
SEGMENTS_DIR = REPO_ROOT / "dbt_project" / "segments"

NUMBER = "number"
TEXT = "text"
BOOLEAN = "boolean"
DATE = "date"
TIMESTAMP = "timestamp"
KINDS = (NUMBER, TEXT, BOOLEAN, DATE, TIMESTAMP)

# Column names become SQL identifiers, so they must be plain lower-case names.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_TYPE_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^(u?(tiny|small|big|huge)?int(eger)?|int[1248]|double( precision)?|float[48]?|real"
            r"|(decimal|numeric)(\s*\(\s*\d+\s*(,\s*\d+\s*)?\))?)$"
        ),
        NUMBER,
    ),
    (re.compile(r"^(varchar|text|string|char|bpchar)(\s*\(\s*\d+\s*\))?$"), TEXT),
    (re.compile(r"^bool(ean)?$"), BOOLEAN),
    (re.compile(r"^date$"), DATE),
    (re.compile(r"^(timestamp|datetime|timestamptz|timestamp with(out)? time zone)$"), TIMESTAMP),
)


class CatalogueError(ValueError):
    """The catalogue yml is missing or wrong; the message names the file and the column."""


@dataclass(frozen=True)
class Field:
    """One column of the attribute table that segment rules may use."""

    name: str
    data_type: str
    kind: str
    description: str = ""


@dataclass(frozen=True)
class Catalogue:
    """The allowed fields by name, and where they were read from (`origin`, for messages)."""

    fields: Mapping[str, Field]
    origin: str = "<catalogue>"
    model: str = DEFAULT_MODEL

    def get(self, name: str) -> Field | None:
        """The field called `name`, or None."""
        return self.fields.get(name)

    def suggest(self, name: str) -> str:
        """' (did you mean 'x'?)' for the closest field name(s), or ''."""
        close = difflib.get_close_matches(str(name), list(self.fields), n=1)
        if not close and len(str(name)) >= 3:  # a prefix: 'age' -> age_years, age_band
            close = [field for field in self.fields if field.startswith(str(name))][:3]
        return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, str],
        origin: str = "<columns>",
        model: str = DEFAULT_MODEL,
    ) -> Catalogue:
        """A catalogue from {column name: data type}; for tests and ad-hoc use."""
        return cls(
            {
                name: _field(name, data_type, "", origin, model)
                for name, data_type in columns.items()
            },
            origin=origin,
            model=model,
        )


def kind_of(data_type: str) -> str | None:
    """The value kind (number, text, boolean, date, timestamp) of a SQL type, or None."""
    text = " ".join(str(data_type).strip().lower().split())
    for pattern, kind in _TYPE_KINDS:
        if pattern.match(text):
            return kind
    return None


def load_catalogue(path: str | Path | None = None, model: str = DEFAULT_MODEL) -> Catalogue:
    """Read the columns of `model` from a dbt models yml into a `Catalogue`.

    `path` defaults to the audiences yml. Every column needs a `data_type` that maps to a
    value kind (see the module docstring); anything else is a `CatalogueError` that names the
    file, the model and the column.
    """
    path = Path(path) if path is not None else DEFAULT_CATALOGUE
    origin = str(path)
    if not path.exists():
        raise CatalogueError(
            f"{origin}: no such file; the segment catalogue is the yml of model {model} "
            "(pass its path with --catalogue)"
        )
    try:
        data = read_yaml(path)
    except YamlFileError as error:
        raise CatalogueError(f"{origin}: {described(error)}") from None
    models = data.get("models") if isinstance(data, Mapping) else None
    if not isinstance(models, list):
        raise CatalogueError(f"{origin}: expected a dbt models yml with a `models:` list")
    entries = [m for m in models if isinstance(m, Mapping) and m.get("name") == model]
    if not entries:
        names = [m.get("name") for m in models if isinstance(m, Mapping)]
        raise CatalogueError(f"{origin}: no model named {model!r} (models here: {names})")
    columns = entries[0].get("columns")
    if not isinstance(columns, list) or not columns:
        raise CatalogueError(f"{origin}: model {model} lists no columns")
    fields: dict[str, Field] = {}
    for position, column in enumerate(columns):
        if not isinstance(column, Mapping) or not isinstance(column.get("name"), str):
            raise CatalogueError(
                f"{origin}: model {model}, column {position + 1}: expected a mapping with a name"
            )
        name = column["name"]
        if name in fields:
            raise CatalogueError(f"{origin}: model {model}, column {name!r} is listed twice")
        fields[name] = _field(
            name, column.get("data_type"), str(column.get("description") or ""), origin, model
        )
    return Catalogue(fields, origin=origin, model=model)


def _field(name: str, data_type: Any, description: str, origin: str, model: str) -> Field:
    where = f"{origin}: model {model}, column {name!r}"
    if not _IDENTIFIER.match(name):
        raise CatalogueError(
            f"{where}: segment fields must be lower-case names of letters, digits and underscores"
        )
    if not isinstance(data_type, str) or not data_type.strip():
        raise CatalogueError(f"{where}: has no data_type; add one (e.g. integer, varchar)")
    kind = kind_of(data_type)
    if kind is None:
        raise CatalogueError(
            f"{where}: data_type {data_type!r} is not one segments understand; use an integer, "
            "double, decimal, varchar, boolean, date or timestamp type"
        )
    return Field(name=name, data_type=data_type.strip().lower(), kind=kind, description=description)


__all__ = [
    "BOOLEAN",
    "DATE",
    "DEFAULT_CATALOGUE",
    "DEFAULT_MODEL",
    "KINDS",
    "SEGMENTS_DIR",
    "NUMBER",
    "TEXT",
    "TIMESTAMP",
    "Catalogue",
    "CatalogueError",
    "Field",
    "kind_of",
    "load_catalogue",
]
