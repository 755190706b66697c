"""Feed contracts: load `feeds.yml` into typed objects, and render the docs that derive from it.

This module has no Dagster import so that the Great Expectations code and tests can use it.

    python -m ml.landing.contracts sync    # rewrite the dbt sources, the timezone macro and
                                           # docs/contracts.md
    python -m ml.landing.contracts check   # exit 1 if any of them is out of date
"""

from __future__ import annotations

import codecs
import re
import sys
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import yaml

from ml.normalise import listed_provider_sql, mailbox_key_sql, mailbox_providers
from ml.yamlfile import read_yaml

from . import overrides as local_rules

CONTRACTS_FILE = Path(__file__).with_name("feeds.yml")
# A user's own settings for reading their files, merged over feeds.yml (see its header).
LOCAL_FILE_NAME = "feeds.local.yml"
REPO_ROOT = Path(__file__).resolve().parents[2]

TYPES = {"string", "integer", "decimal", "date", "timestamp", "json"}
FORMATS = {"email", "phone", "reference"}
REFERENCE_KINDS = ("email", "crm_id", "loyalty_id")
FILE_FORMATS = {"csv", "jsonl", "parquet", "merchant_xml"}
LINEAGE_COLUMNS = ("_source_file", "_row_number", "_load_id", "_loaded_at")
FEED_FIELDS = {
    "description",
    "table",
    "formats",
    "timezone",
    "key",
    "key_scope",
    "columns",
    "retention",
    "read",
    "aliases",
}
# What a user's feeds.local.yml may set per feed: how their files are written (read, aliases,
# formats) and, per column, its rules and where its values come from (ml/landing/overrides.py);
# never the key or the columns themselves. At the top: `feeds` and `identifier_patterns`.
OVERRIDE_FIELDS = ("read", "aliases", "formats", "columns")
# Column fields only a user's overrides file sets (ml/landing/overrides.py), never feeds.yml.
LOCAL_COLUMN_FIELDS = ("values", "default", "derive")
COMPRESSED_FORMATS = {"csv", "jsonl", "merchant_xml"}  # also taken gzip-compressed: *.csv.gz
# Encodings a feed's text files may be written in: the name feeds.yml uses -> Python's codec.
ENCODINGS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "windows-1252": "cp1252",
    "latin-1": "latin-1",
}


class ContractError(ValueError):
    """feeds.yml itself is wrong: the message names the feed and the field."""


KIND_WORDS = {
    "email": "an email",
    "crm_id": "a crm id (C + 7 digits)",
    "loyalty_id": "a loyalty id (L + 8 digits)",
}


def reference_words(kinds: tuple[str, ...] | None) -> str:
    """'an email, a crm id (C + 7 digits) or a loyalty id (L + 8 digits)' for the accepted kinds."""
    words = [KIND_WORDS[k] for k in (kinds or REFERENCE_KINDS)]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    min: str | float | None = None
    max: str | float | None = None
    pattern: str | None = None
    format: str | None = None
    region_from: str | None = None
    pii: bool = False
    source: str | None = None  # XML element for merchant_xml feeds
    part: str | None = None  # amount | currency, for "19.99 GBP" values
    kinds: tuple[str, ...] | None = None  # reference kinds accepted (default: all)
    erase_by: bool = False  # names whose row it is: the loader drops rows of erased people by it
    # set by a user's overrides file only (ml/landing/overrides.py):
    values: tuple[tuple[str, str], ...] | None = None  # (their value, ours) once trimmed
    default: str | None = None  # the value of every row of a file without the column
    derive: str | tuple[str, ...] | None = None  # "sequence", or the columns a concat joins

    @property
    def erase_column(self) -> str:
        """The landed column the loader compares with erasure tombstones.

        The normalised column for email and reference formats (trimmed, lower-cased emails),
        the column itself otherwise.
        """
        if self.format in ("email", "reference"):
            return f"{self.name}_normalised"
        return self.name

    @property
    def derived(self) -> tuple[str, ...]:
        """Names of the columns the loader adds when it normalises this one."""
        if self.format == "email":
            return (f"{self.name}_normalised",)
        if self.format == "phone":
            return (f"{self.name}_e164",)
        if self.format == "reference":
            return (f"{self.name}_normalised", f"{self.name}_type")
        return ()

    def rules_text(self) -> str:
        """The column's rules in words, for the docs."""
        rules = []
        if self.required:
            rules.append("required")
        if self.allowed:
            rules.append("one of " + ", ".join(f"`{v}`" for v in self.allowed))
        if self.min is not None:
            rules.append(f"≥ {self.min}")
        if self.max is not None:
            rules.append(f"≤ {self.max}")
        if self.pattern:
            rules.append(f"matches `{self.pattern}`")
        if self.format == "phone":
            rules.append(f"a phone number valid in the row's `{self.region_from}`")
        elif self.format == "email":
            rules.append("a valid email address")
        elif self.format == "reference":
            rules.append(reference_words(self.kinds))
        return "; ".join(rules)


@dataclass(frozen=True)
class Retention:
    """How long a feed's landed rows are kept: `days` after the timestamp in `column`."""

    days: int
    column: str

    def describe(self) -> str:
        years, rest = divmod(self.days, 365)
        months = round(self.days / 30.4)
        if rest in (0, 1, 2) and years:
            about = f"about {years} year{'s' if years > 1 else ''}"
        else:
            about = f"about {months} months"
        return f"{self.days} days ({about}) after `{self.column}`"


@dataclass(frozen=True)
class ReadOptions:
    """How a feed's files are written, where they differ from the defaults (`read:`)."""

    delimiter: str = ","
    quote: str | None = '"'  # None: fields are never quoted
    encoding: str = "utf-8"  # a key of ENCODINGS
    decimal: str = "."  # "," for a decimal comma: 12,50 lands as 12.50
    date_format: str | None = None  # e.g. %d/%m/%Y; None: YYYY-MM-DD
    timestamp_format: str | None = None  # e.g. %m/%d/%Y %H:%M; None: ISO 8601

    @property
    def codec(self) -> str:
        """Python's name for the encoding."""
        return ENCODINGS[self.encoding]


@dataclass(frozen=True)
class Feed:
    name: str
    description: str
    table: str
    formats: dict[str, str]
    timezone: str
    key: tuple[str, ...]
    key_scope: str
    columns: tuple[Column, ...] = field(default_factory=tuple)
    retention: Retention | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    # other names a file may give a contract column (matched ignoring case and spaces)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # what each kind of customer reference looks like (`identifier_patterns`, overrides merged)
    identifier_patterns: dict[str, str] = field(default_factory=dict)

    @property
    def supplied(self) -> tuple[Column, ...]:
        """The columns a file may lack: the overrides give them a default or derive them."""
        return tuple(c for c in self.columns if c.default is not None or c.derive is not None)

    @property
    def erase_by(self) -> tuple[Column, ...]:
        """The columns that name whose row it is (`erase_by: true`)."""
        return tuple(c for c in self.columns if c.erase_by)

    @property
    def qualified_table(self) -> str:
        return f"{self.name}.{self.table}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def derived_columns(self) -> tuple[str, ...]:
        return tuple(d for c in self.columns for d in c.derived)

    @property
    def landed_columns(self) -> tuple[str, ...]:
        """Every column of the landed table, in order."""
        return self.column_names + self.derived_columns + LINEAGE_COLUMNS

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"feed {self.name!r} has no column {name!r}")

    def file_format(self, path: Path) -> str | None:
        """The format whose pattern matches the file name, or None if the feed does not take it.

        A text format also takes its files gzip-compressed: `*.csv` takes `orders.csv.gz`.
        """
        for fmt, pattern in self.formats.items():
            if path.match(pattern):
                return fmt
        if is_gzip(path):
            inner = path.with_name(path.name[: -len(".gz")])
            for fmt, pattern in self.formats.items():
                if fmt in COMPRESSED_FORMATS and inner.match(pattern):
                    return fmt
        return None


def is_gzip(path: Path) -> bool:
    """Whether a landing file is gzip-compressed (its name ends in .gz)."""
    return path.name.lower().endswith(".gz")


@dataclass(frozen=True)
class Contracts:
    feeds: dict[str, Feed]
    identifier_patterns: dict[str, str]

    def __iter__(self):
        return iter(self.feeds.values())

    def __getitem__(self, name: str) -> Feed:
        return self.feeds[name]


def _column(feed: str, raw: dict) -> Column:
    where = f"feeds.yml: feed {feed!r}, column {raw.get('name')!r}"
    unknown = set(raw) - set(Column.__dataclass_fields__) | (set(raw) & set(LOCAL_COLUMN_FIELDS))
    if unknown:
        raise ContractError(f"{where}: unknown field(s) {sorted(unknown)}")
    if raw.get("type") not in TYPES:
        raise ContractError(f"{where}: type {raw.get('type')!r} is not one of {sorted(TYPES)}")
    if raw.get("format") not in (None, *FORMATS):
        raise ContractError(f"{where}: format {raw['format']!r} is not one of {sorted(FORMATS)}")
    if not raw.get("description"):
        raise ContractError(f"{where}: every column needs a description")
    if raw.get("pattern"):
        try:
            re.compile(raw["pattern"])
        except re.error as exc:
            raise ContractError(f"{where}: pattern does not compile: {exc}") from exc
    values = dict(raw)
    if values.get("allowed") is not None:
        values["allowed"] = tuple(str(v) for v in values["allowed"])
    if values.get("kinds") is not None:
        values["kinds"] = tuple(values["kinds"])
        if values.get("format") != "reference" or not set(values["kinds"]) <= set(REFERENCE_KINDS):
            raise ContractError(
                f"{where}: kinds go with format reference and are among {list(REFERENCE_KINDS)}"
            )
    if not isinstance(values.get("erase_by", False), bool):
        raise ContractError(f"{where}: erase_by is true or false")
    return Column(**values)


def _retention(feed: str, raw: object, columns: tuple[Column, ...]) -> Retention | None:
    """The feed's `retention: {days: N, column: <timestamp column>}`, checked."""
    if raw is None:
        return None
    where = f"feeds.yml: feed {feed!r}, retention"
    if not isinstance(raw, dict) or set(raw) != {"days", "column"}:
        raise ContractError(
            f"{where}: write it as {{days: <whole days>, column: <timestamp column>}}"
        )
    days = raw["days"]
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ContractError(f"{where}: days {days!r} is not a whole number of days of at least 1")
    by_name = {c.name: c for c in columns}
    column = by_name.get(raw["column"])
    if column is None or column.type != "timestamp":
        raise ContractError(
            f"{where}: column {raw['column']!r} is not a timestamp column of the feed"
        )
    return Retention(days=days, column=column.name)


def _read_options(
    feed: str, raw: object, file: str, base: ReadOptions | None = None
) -> ReadOptions:
    """The feed's `read:` options, checked, over `base` (the contract's, for an override)."""
    base = base or ReadOptions()
    if raw is None:
        return base
    where = f"{file}: feed {feed!r}, read"
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: write it as a mapping, e.g. {{delimiter: ';'}}")
    unknown = set(raw) - set(ReadOptions.__dataclass_fields__)
    if unknown:
        known = ", ".join(ReadOptions.__dataclass_fields__)
        raise ContractError(f"{where}: unknown field(s) {sorted(unknown)}; known: {known}")
    values = {**base.__dict__, **raw}
    for name in ("delimiter", "decimal"):
        if not isinstance(values[name], str) or len(values[name]) != 1:
            raise ContractError(f"{where}.{name}: {values[name]!r} is not a single character")
    if values["delimiter"] in ("\n", "\r") or values["delimiter"] == values["quote"]:
        raise ContractError(f"{where}.delimiter: {values['delimiter']!r} cannot separate fields")
    if values["decimal"] not in (".", ","):
        raise ContractError(f"{where}.decimal: {values['decimal']!r} is not '.' or ','")
    quote = values["quote"]
    if quote == "":
        values["quote"] = None
    elif quote is not None and (not isinstance(quote, str) or len(quote) != 1 or quote in "\r\n"):
        raise ContractError(f"{where}.quote: {quote!r} is not a single character (or '' for none)")
    if values["encoding"] not in ENCODINGS:
        named = _encoding_named(values["encoding"])
        if named is None:
            choices = ", ".join(ENCODINGS)
            raise ContractError(f"{where}.encoding: {values['encoding']!r} is not one of {choices}")
        values["encoding"] = named
    for name in ("date_format", "timestamp_format"):
        text = values[name]
        if text is not None and (not isinstance(text, str) or "%" not in text):
            raise ContractError(
                f"{where}.{name}: {text!r} is not a format such as '%d/%m/%Y' (strftime codes)"
            )
    return ReadOptions(**values)


def _encoding_named(name: object) -> str | None:
    """The ENCODINGS key for another spelling of it (`UTF8`, `cp1252`, `iso-8859-1`), or None."""
    try:
        codec = codecs.lookup(str(name)).name
    except LookupError:
        return None
    spelled = {codecs.lookup(c).name: key for key, c in ENCODINGS.items()}
    return spelled.get(codec)


def _aliases(
    feed: str, raw: object, columns: tuple[Column, ...], file: str
) -> dict[str, tuple[str, ...]]:
    """The feed's `aliases: {<column>: [<other name>, ...]}`, checked."""
    if raw is None:
        return {}
    where = f"{file}: feed {feed!r}, aliases"
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: write it as {{<column>: [<name in the file>, ...]}}")
    names = {c.name for c in columns}
    aliases = {}
    for column, others in raw.items():
        if column not in names:
            raise ContractError(f"{where}: {column!r} is not a column of the feed")
        others = [others] if isinstance(others, str) else others
        if not isinstance(others, list) or not all(
            isinstance(o, str) and o.strip() for o in others
        ):
            raise ContractError(f"{where}.{column}: write the other names as a list of text")
        aliases[column] = tuple(others)
    return aliases


def parse(document: dict, file: str = "feeds.yml") -> Contracts:
    feeds = {}
    patterns = dict(document.get("identifier_patterns", {}))
    for name, raw in document["feeds"].items():
        columns = tuple(_column(name, c) for c in raw["columns"])
        names = [c.name for c in columns]
        for key in raw["key"]:
            if key not in names:
                raise ContractError(f"{file}: feed {name!r}: key column {key!r} is not a column")
        _check_formats(name, raw["formats"], file)
        if raw["key_scope"] not in ("feed", "file"):
            raise ContractError(f"{file}: feed {name!r}: key_scope must be 'feed' or 'file'")
        for c in columns:
            if c.format == "phone" and c.region_from not in names:
                raise ContractError(
                    f"{file}: feed {name!r}, column {c.name!r}: region_from must name a column"
                )
        unknown = set(raw) - FEED_FIELDS
        if unknown:
            raise ContractError(f"{file}: feed {name!r}: unknown field(s) {sorted(unknown)}")
        feeds[name] = Feed(
            name=name,
            description=" ".join(raw["description"].split()),
            table=raw["table"],
            formats=dict(raw["formats"]),
            timezone=raw["timezone"],
            key=tuple(raw["key"]),
            key_scope=raw["key_scope"],
            columns=columns,
            retention=_retention(name, raw.get("retention"), columns),
            read=_read_options(name, raw.get("read"), file),
            aliases=_aliases(name, raw.get("aliases"), columns, file),
            identifier_patterns=patterns,
        )
    return Contracts(feeds=feeds, identifier_patterns=patterns)


def _check_formats(feed: str, formats: object, file: str) -> None:
    if not isinstance(formats, dict) or not formats:
        raise ContractError(f"{file}: feed {feed!r}: formats is a mapping such as {{csv: '*.csv'}}")
    for fmt, pattern in formats.items():
        if fmt not in FILE_FORMATS:
            raise ContractError(
                f"{file}: feed {feed!r}: format {fmt!r} is not one of {sorted(FILE_FORMATS)}"
            )
        if not isinstance(pattern, str) or not pattern.strip():
            raise ContractError(f"{file}: feed {feed!r}: format {fmt!r} needs a file name pattern")


def read_document(path: Path) -> dict:
    """The one place the landing package reads YAML (the safe reader of ml/yamlfile.py)."""
    return read_yaml(path)


def load(path: Path = CONTRACTS_FILE, overrides: Path | None = None) -> Contracts:
    """The feed contracts, parsed and checked; with `overrides`, a user's file merged over.

    Read once per process and file (however the arguments are spelled)."""
    return _load(Path(path).resolve(), Path(overrides).resolve() if overrides else None)


@cache
def _load(path: Path, overrides: Path | None) -> Contracts:
    contracts = parse(read_document(path))
    if overrides is None:
        return contracts
    return with_overrides(contracts, read_document(overrides), _display(overrides))


def with_overrides(contracts: Contracts, document: dict, file: str) -> Contracts:
    """The contracts with a user's overrides merged over, per feed (see ml/landing/overrides.py).

    `read` options and `formats` replace the contract's, key by key; `aliases` add to them;
    `columns` change a column's rules; `identifier_patterns` replace the kinds they name.
    """
    feeds = document.get("feeds", {})
    unknown_top = set(document) - {"feeds", "identifier_patterns"}
    if unknown_top or not isinstance(feeds, dict) or not document:
        raise ContractError(
            f"{file}: expected `feeds:` with, per feed, any of {', '.join(OVERRIDE_FIELDS)} "
            "(and, optionally, `identifier_patterns:`)"
        )
    try:
        patterns, changed = local_rules.identifier_patterns(
            contracts.identifier_patterns, document.get("identifier_patterns"), file
        )
    except local_rules.RuleError as exc:
        raise ContractError(str(exc)) from None
    merged = {}
    for name, feed in contracts.feeds.items():
        columns = tuple(
            local_rules.follow_identifier_patterns(c, contracts.identifier_patterns, changed)
            for c in feed.columns
        )
        merged[name] = replace(feed, columns=columns, identifier_patterns=patterns)
    for name, raw in feeds.items():
        if name not in merged:
            raise ContractError(
                f"{file}: feed {name!r} is not in ml/landing/feeds.yml (feeds: {', '.join(merged)})"
            )
        merged[name] = _feed_with_overrides(merged[name], raw, file)
    return Contracts(feeds=merged, identifier_patterns=patterns)


def _feed_with_overrides(feed: Feed, raw: object, file: str) -> Feed:
    if not isinstance(raw, dict):
        raise ContractError(f"{file}: feed {feed.name!r}: write a mapping of {OVERRIDE_FIELDS}")
    refused = set(raw) - set(OVERRIDE_FIELDS)
    if refused:
        raise ContractError(
            f"{file}: feed {feed.name!r}: cannot set {sorted(refused)}; a local file sets only "
            f"{', '.join(OVERRIDE_FIELDS)} (the key and the list of columns stay in "
            "ml/landing/feeds.yml)"
        )
    formats = dict(feed.formats)
    if "formats" in raw:
        _check_formats(feed.name, raw["formats"], file)
        formats.update(raw["formats"])
    aliases = dict(feed.aliases)
    for column, others in _aliases(feed.name, raw.get("aliases"), feed.columns, file).items():
        aliases[column] = tuple(dict.fromkeys(aliases.get(column, ()) + others))
    read = _read_options(feed.name, raw.get("read"), file, base=feed.read)
    try:
        changed = local_rules.column_overrides(feed, raw.get("columns"), file)
    except local_rules.RuleError as exc:
        raise ContractError(str(exc)) from None
    columns = tuple(changed.get(c.name, c) for c in feed.columns)
    return replace(feed, formats=formats, aliases=aliases, read=read, columns=columns)


def overrides_file(landing: Path, explicit: Path | None = None) -> Path | None:
    """The user's overrides: `explicit` (Settings.feeds_overrides, $TEAL_FEEDS) if given, else
    feeds.local.yml beside the landing folder when there is one."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ContractError(f"{explicit}: no such file (set by $TEAL_FEEDS)")
        return Path(explicit)
    beside = Path(landing).parent / LOCAL_FILE_NAME
    return beside if beside.is_file() else None


def _display(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- rendering

SOURCES_HEADER = (
    "# Generated from ml/landing/feeds.yml by `make contracts`: edit that file, not this one.\n"
)

LINEAGE_DOCS = {
    "_source_file": "File the row came from, relative to data/landing/.",
    "_row_number": "Line (CSV, JSON Lines), row (Parquet) or item (XML) of the row in its file.",
    "_load_id": "Id of the landing run that loaded the row; joins landing.files.",
    "_loaded_at": "When the row was landed (UTC).",
}


def _derived_doc(column: Column, derived: str) -> str:
    if derived.endswith("_e164"):
        return f"{column.name} in E.164 form, parsed with the row's {column.region_from} (null when empty)."
    if derived.endswith("_type"):
        return f"What {column.name} is: {', '.join(column.kinds or REFERENCE_KINDS)} (null when empty)."
    if column.format == "reference":
        return f"{column.name} trimmed; lower-cased when it is an email (null when empty)."
    return f"{column.name} trimmed and lower-cased, syntax checked (null when empty)."


def render_sources(feed: Feed) -> str:
    """The dbt sources file for one feed: every landed column documented and tagged."""
    columns = []
    for c in feed.columns:
        entry: dict = {"name": c.name, "description": c.description, "data_type": "varchar"}
        meta = {"pii": True} if c.pii else {}
        if c.erase_by:
            meta["erase_by"] = True
        if meta:
            entry["config"] = {"meta": meta}
        tests = []
        if c.required:
            tests.append("not_null")
        if c.allowed:
            tests.append({"accepted_values": {"arguments": {"values": list(c.allowed)}}})
        if tests:
            entry["data_tests"] = tests
        columns.append(entry)
        for d in c.derived:
            derived_entry: dict = {
                "name": d,
                "description": _derived_doc(c, d),
                "data_type": "varchar",
            }
            if c.pii and not d.endswith("_type"):
                derived_entry["config"] = {"meta": {"pii": True}}
            columns.append(derived_entry)
    for name, doc in LINEAGE_DOCS.items():
        dtype = {"_row_number": "bigint", "_loaded_at": "timestamp"}.get(name, "varchar")
        columns.append(
            {"name": name, "description": doc, "data_type": dtype, "data_tests": ["not_null"]}
        )
    table: dict = {
        "name": feed.table,
        "description": f"{feed.description} Landed by the Dagster asset {feed.name}/{feed.table}; "
        f"every value is the text received. Key: {', '.join(feed.key)} (unique across "
        f"{'all files' if feed.key_scope == 'feed' else 'one file'}).",
        "meta": {"timezone": feed.timezone, **_retention_meta(feed)},
        "columns": columns,
    }
    if feed.key_scope == "feed":
        table["data_tests"] = [
            {"teal_unique_combination": {"arguments": {"columns": list(feed.key)}}}
        ]
    else:
        table["data_tests"] = [
            {"teal_unique_combination": {"arguments": {"columns": [*feed.key, "_source_file"]}}}
        ]
    document = {
        "version": 2,
        "sources": [
            {
                "name": feed.name,
                "description": f"Feed `{feed.name}` landed from data/landing/{feed.name}/.",
                "schema": feed.name,
                "tables": [table],
            }
        ],
    }
    return SOURCES_HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def _retention_meta(feed: Feed) -> dict:
    if feed.retention is None:
        return {}
    return {"retention_days": feed.retention.days, "retention_column": feed.retention.column}


def render_timezone_macro(contracts: Contracts) -> str:
    """A dbt macro that answers each feed's timezone, so dbt reads it from the contract too."""
    zones = ", ".join(f"'{feed.name}': '{feed.timezone}'" for feed in contracts)
    return (
        "{#- Generated from ml/landing/feeds.yml by `make contracts`: edit that file, not this one.\n"
        "    The zone of a feed's timestamps written without an offset. -#}\n"
        "{% macro feed_timezone(feed) -%}\n"
        f"    {{%- set zones = {{{zones}}} -%}}\n"
        "    {%- if feed not in zones -%}\n"
        '        {{ exceptions.raise_compiler_error("feed_timezone: no feed \'" ~ feed ~ "\' in feeds.yml") }}\n'
        "    {%- endif -%}\n"
        "    {{ return(zones[feed]) }}\n"
        "{%- endmacro %}\n"
    )


TIMEZONE_MACRO = REPO_ROOT / "dbt_project" / "macros" / "feed_timezone.sql"
MAILBOX_MACROS = {
    "mailbox_key": (
        "The mailbox an address in its normal form reaches.",
        lambda: mailbox_key_sql("{{ email }}"),
    ),
    "is_listed_mailbox_provider": (
        "True for an address in its normal form at a domain of mailbox_providers.",
        lambda: listed_provider_sql("{{ email }}"),
    ),
}


def mailbox_macro_path(name: str) -> Path:
    return REPO_ROOT / "dbt_project" / "macros" / f"{name}.sql"


def render_mailbox_macro(name: str) -> str:
    """A dbt macro of the mailbox rules (ml/normalise.py), so dbt applies the
    `mailbox_providers` of feeds.yml with the same SQL as Python."""
    about, sql = MAILBOX_MACROS[name]
    return (
        "{#- Generated from ml/landing/feeds.yml (mailbox_providers) by `make contracts`: edit\n"
        f"    that file, not this one. {about} -#}}\n"
        f"{{% macro {name}(email) -%}}\n"
        + "".join(f"    {line}\n" for line in sql().splitlines())
        + "{%- endmacro %}\n"
    )


# The reference page of every feed's contract, linked from docs/landing.md and the README.
CONTRACTS_PAGE = REPO_ROOT / "docs" / "contracts.md"


def generated_files(contracts: Contracts) -> dict[Path, str]:
    """Every file derived from the contracts, with the text it should hold."""
    files = {sources_path(feed): render_sources(feed) for feed in contracts}
    files[TIMEZONE_MACRO] = render_timezone_macro(contracts)
    for name in MAILBOX_MACROS:
        files[mailbox_macro_path(name)] = render_mailbox_macro(name)
    files[CONTRACTS_PAGE] = render_markdown(contracts)
    return files


def sources_path(feed: Feed) -> Path:
    return (
        REPO_ROOT / "dbt_project" / "models" / "staging" / feed.name / f"_{feed.name}__sources.yml"
    )


def render_markdown(contracts: Contracts) -> str:
    """docs/contracts.md: every feed's files, key, retention, erasure columns and columns."""
    out = [*PAGE_HEADER, ""]
    for feed in contracts:
        formats = ", ".join(f"{fmt} (`{pattern}`)" for fmt, pattern in feed.formats.items())
        scope = "any file, any run" if feed.key_scope == "feed" else "one file"
        out += [
            f"## `{feed.name}` → `{feed.qualified_table}`",
            "",
            feed.description,
            "",
            f"Files: `data/landing/{feed.name}/`, {formats}. Key: `{', '.join(feed.key)}`, "
            f"unique within {scope}. Timestamps without an offset are in {feed.timezone}.",
            "",
            _retention_text(feed) + " " + _erase_text(feed),
            "",
            "| column | type | rules | description |",
            "|---|---|---|---|",
        ]
        for c in feed.columns:
            pii = " (personal data)" if c.pii else ""
            out.append(f"| `{c.name}` | {c.type} | {c.rules_text()} | {c.description}{pii} |")
        out.append("")
    return "\n".join(out + render_mailbox_section())


def render_mailbox_section() -> list[str]:
    """docs/contracts.md's table of the mail providers whose addresses reach one mailbox."""
    out = [
        "## Mailboxes",
        "",
        "Addresses written differently that reach one mailbox are one identifier for identity, "
        "consent and suppression: they compare the mailbox key (`ml/normalise.py` "
        "`mailbox_key`, and the dbt macro `mailbox_key`), from `mailbox_providers` in "
        "`ml/landing/feeds.yml`. Exports still write each platform's own normalisation.",
        "",
        "| domain | mailbox key's domain | dots ignored | +tags ignored |",
        "|---|---|---|---|",
    ]
    for domain, rule in mailbox_providers().items():
        dots = "yes" if rule.dots_ignored else "no"
        tags = "yes" if rule.plus_tags else "no"
        out.append(f"| `{domain}` | `{rule.domain}` | {dots} | {tags} |")
    return out + [""]


PAGE_HEADER = [
    "<!-- Generated from ml/landing/feeds.yml by `make contracts`: edit that file, not this "
    "one. tests/test_contracts.py fails when this page is out of date. -->",
    "",
    "# Feed contracts",
    "",
    "One section per feed, generated from its contract in `ml/landing/feeds.yml`. The loader "
    "enforces these rules, the Great Expectations suites and the dbt sources are built from "
    "them, and [landing.md](landing.md) explains what happens to a row that breaks one. "
    "Every column lands as the text received, plus the lineage columns `_source_file`, "
    "`_row_number`, `_load_id` and `_loaded_at`; an email column also gets `<column>_normalised`, "
    "a phone column `<column>_e164`, and a reference column `<column>_normalised` and "
    "`<column>_type`.",
    "",
    "Two keys of `feeds.yml` serve privacy. `erase_by: true` marks the columns that name whose "
    "row it is: once a person is erased, the loader drops any later row whose `erase_by` value "
    "(the normalised column for emails and references) has the salted hash of one of their "
    "identifiers in `privacy.tombstones`, and counts it as erased. `retention: {days: N, column: "
    "<timestamp column>}` keeps a feed's landed rows N days after that timestamp; "
    "`ml/privacy/retention.py` purges older rows every run and logs them in "
    "`privacy.retention_log`. See [activation-and-privacy.md](activation-and-privacy.md).",
]


def _retention_text(feed: Feed) -> str:
    if feed.retention is None:
        return "Retention: kept without a time limit."
    return f"Retention: kept {feed.retention.describe()}; older rows are purged every run."


def _erase_text(feed: Feed) -> str:
    if not feed.erase_by:
        return "Erasure: no column names a person."
    names = ", ".join(f"`{c.name}`" for c in feed.erase_by)
    return f"Erasure: rows of an erased person are recognised by {names}."


def outdated(contracts: Contracts | None = None) -> list[Path]:
    """Generated files that differ from what the contracts say."""
    contracts = contracts or load()
    return [
        path
        for path, text in generated_files(contracts).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def sync(contracts: Contracts | None = None) -> list[Path]:
    """Rewrite the generated files; return the ones that changed."""
    contracts = contracts or load()
    changed = outdated(contracts)
    for path, text in generated_files(contracts).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "sync":
        for path in sync():
            print(f"rewrote {path.relative_to(REPO_ROOT)}")
        return 0
    if command == "check":
        stale = outdated()
        for path in stale:
            print(
                f"{path.relative_to(REPO_ROOT)} is out of date with feeds.yml: run `make contracts`"
            )
        return 1 if stale else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
