"""Export configuration: which segments become files, with which attributes and which holdout.

An export file (`dbt_project/exports/*.yml`) holds one export, or `exports:` followed by a list
of them; the format is described at the top of `dbt_project/exports/exports.yml`.
`load_exports()` reads a folder (or files), checks every export against the segments and the
attribute catalogue, and returns `ExportConfig`s, or raises `ExportValidationError` listing the
first problem of every broken export, each naming the file, the export and the key.

An export's consent purpose is its segment's `consent_purpose`: the segment file says what
its audience may be used for, so an export cannot ask for less. The purpose also decides which
files an export may write (`formats`, see `PURPOSE_FORMATS`): email addresses in plain text go
only to email tools, hashed identifiers only to ad platforms, and the attribute-only Parquet
file (no direct personal data) to analysts under any purpose.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ml.segments.catalogue import REPO_ROOT, SEGMENTS_DIR, Catalogue, load_catalogue
from ml.segments.rules import (
    Segment,
    _did_you_mean,
    _display,
    load_segments,
    segment_files,
)
from ml.yamlfile import YamlFileError, clipped, described, read_yaml

EXPORTS_DIR = REPO_ROOT / "dbt_project" / "exports"
EXPORT_KEYS = (
    "name",
    "segment",
    "description",
    "attributes",
    "holdout_percent",
    "measurement_window_days",
    "formats",
)
REQUIRED_KEYS = ("segment", "description", "holdout_percent", "measurement_window_days")
MAX_HOLDOUT_PERCENT = 50
MIN_WINDOW_DAYS = 1
MAX_WINDOW_DAYS = 90
# audience.csv always starts with these; they cannot be chosen again as attributes.
FIXED_COLUMNS = ("customer_id", "email", "first_name", "last_name")

# The files an export can write, by format name (the order files are written and listed in).
FORMAT_FILES = {
    "csv": "audience.csv",  # email and CRM tools: plain email and names
    "google": "google_customer_match.csv",  # Google Customer Match: hashed identifiers
    "meta": "meta_custom_audience.csv",  # Meta Custom Audiences: hashed identifiers
    "parquet": "audience.parquet",  # analysts: attributes only, no direct personal data
}
FORMATS = tuple(FORMAT_FILES)
FORMAT_USES = {
    "csv": "plain email addresses and names for email and CRM tools",
    "google": "hashed identifiers for Google Customer Match",
    "meta": "hashed identifiers for Meta Custom Audiences",
    "parquet": "attributes without direct personal data, for analysts",
}
# The formats each consent purpose covers; an export without `formats:` writes all of them.
# audience.csv carries plain email addresses for email tools, so ads_personalization does not
# cover it; the platform files are for advertising, so email_marketing does not cover them.
PURPOSE_FORMATS: dict[str, tuple[str, ...]] = {
    "email_marketing": ("csv", "parquet"),
    "ads_personalization": ("google", "meta", "parquet"),
    "analytics": ("parquet",),
}

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ExportError(ValueError):
    """One problem in one export file: `file`, `export`, `key` and what is wrong."""

    def __init__(self, file: str, problem: str, export: str | None = None, key: str = ""):
        self.file = file
        self.export = export
        self.key = key
        self.problem = problem = clipped(problem)
        where = file if export is None else f"{file}: export {export}"
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


class ExportValidationError(ValueError):
    """Export files that failed validation; `errors` holds one `ExportError` per problem."""

    def __init__(self, errors: Sequence[ExportError], valid: Sequence[ExportConfig] = ()):
        self.errors = tuple(errors)
        self.valid = tuple(valid)  # the exports that did validate
        count = len(self.errors)
        heading = f"{count} export problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([heading, *(f"  {e}" for e in self.errors)]))

    def messages(self) -> list[str]:
        """The message of each problem, in file order."""
        return [str(e) for e in self.errors]


# The name the exports asset catches.
ExportConfigError = ExportValidationError


@dataclass(frozen=True)
class ExportConfig:
    """One validated export: a segment written to files, with a sticky holdout."""

    name: str
    segment: str
    description: str
    attributes: tuple[str, ...]
    holdout_percent: float
    measurement_window_days: int
    file: str = "<export>"
    # Format names (csv, google, meta, parquet) in FORMATS order; () means every format the
    # segment's consent purpose allows (`load_exports` always fills it in).
    formats: tuple[str, ...] = ()

    @property
    def holdout_threshold(self) -> int:
        """Holdout buckets (0..9999) below this number are held out: percent x 100."""
        return round(self.holdout_percent * 100)

    def formats_for(self, consent_purpose: str) -> tuple[str, ...]:
        """The formats to write for a segment of `consent_purpose`; ValueError naming the
        export if one of them is not allowed for that purpose."""
        allowed = allowed_formats(consent_purpose)
        if not self.formats:
            return allowed
        refused = [f for f in self.formats if f not in allowed]
        if refused:
            raise ValueError(
                f"export {self.name!r} ({self.file}): formats {', '.join(refused)} are not "
                f"allowed for consent purpose {consent_purpose} (it allows "
                f"{', '.join(allowed)}); remove them from `formats`"
            )
        return tuple(f for f in FORMATS if f in self.formats)


def allowed_formats(consent_purpose: str) -> tuple[str, ...]:
    """The formats a consent purpose covers (also the default formats of its exports)."""
    try:
        return PURPOSE_FORMATS[consent_purpose]
    except KeyError:
        raise ValueError(
            f"no export formats are defined for consent purpose {consent_purpose!r}; "
            f"exports know {', '.join(PURPOSE_FORMATS)}"
        ) from None


def load_exports(
    folder: str | Path | Iterable[str | Path] = EXPORTS_DIR,
    segments: Sequence[Segment] | Mapping[str, Segment] | None = None,
    catalogue: Catalogue | None = None,
) -> list[ExportConfig]:
    """Read and check every export in a folder (or list of files).

    `segments` are the segments exports may name (default: every segment in
    dbt_project/segments, checked against `catalogue`); `catalogue` is the attribute catalogue
    (default: the audiences yml). A folder with no export files gives no exports. Raises
    `ExportValidationError` with the first problem of every broken export, and every clash
    between exports (a name used twice, a segment exported twice).
    """
    catalogue = catalogue if catalogue is not None else load_catalogue()
    if segments is None:
        segments = load_segments(SEGMENTS_DIR, catalogue)
    by_name = dict(segments) if isinstance(segments, Mapping) else {s.name: s for s in segments}
    if isinstance(folder, str | Path) and not Path(folder).exists():
        raise ExportValidationError(
            [
                ExportError(
                    str(folder), "no such folder or file; exports live in dbt_project/exports"
                )
            ]
        )
    errors: list[ExportError] = []
    exports: list[ExportConfig] = []
    names: dict[str, str] = {}
    segments_used: dict[str, str] = {}
    for path in segment_files(folder):
        try:
            parsed = parse_export_file(path, by_name, catalogue)
        except ExportValidationError as exc:
            errors.extend(exc.errors)
            parsed = list(exc.valid)
        for export in parsed:
            clash = _clash(export, names, segments_used)
            if clash is not None:
                errors.append(clash)
                continue
            names[export.name] = export.file
            segments_used[export.segment] = f"{export.name!r} in {export.file}"
            exports.append(export)
    if errors:
        raise ExportValidationError(errors, exports)
    return exports


def _clash(
    export: ExportConfig, names: Mapping[str, str], segments_used: Mapping[str, str]
) -> ExportError | None:
    """An error when an earlier export already has this export's name or segment (`names`:
    name -> file; `segments_used`: segment -> the export that writes it), else None."""
    label = repr(export.name)
    if export.name in names:
        return ExportError(
            export.file,
            f"export name already used in {names[export.name]}; export names must be "
            "unique (set `name:` to tell them apart)",
            label,
            "name",
        )
    if export.segment in segments_used:
        return ExportError(
            export.file,
            f"segment {export.segment!r} already has an export "
            f"({segments_used[export.segment]}); a segment has at most one export, "
            "so add the attributes you need to that one",
            label,
            "segment",
        )
    return None


def parse_export_file(
    path: str | Path, segments: Mapping[str, Segment], catalogue: Catalogue
) -> list[ExportConfig]:
    """The exports of one file; `ExportValidationError` (with `.valid`) if any is broken."""
    path = Path(path)
    file = _display(path)
    try:
        data = read_yaml(path)
    except YamlFileError as error:
        _fail_file(file, described(error))
    return parse_exports(data, file, segments, catalogue)


def parse_exports(
    data: Any, file: str, segments: Mapping[str, Segment], catalogue: Catalogue
) -> list[ExportConfig]:
    """The exports of already-parsed YAML `data` that came from `file`."""
    if isinstance(data, Mapping) and "exports" in data:
        others = [k for k in data if k != "exports"]
        if others:
            _fail_file(
                file, f"unknown key {others[0]!r} beside `exports:`; put it inside an export"
            )
        items = data["exports"]
        if not isinstance(items, list) or not items:
            _fail_file(file, "`exports:` must be followed by a list of exports (`- segment: ...`)")
    elif isinstance(data, Mapping):
        items = [data]
    else:
        _fail_file(
            file,
            "expected one export (a mapping with segment, description, holdout_percent and "
            "measurement_window_days) or `exports:` with a list of them",
        )
    errors: list[ExportError] = []
    exports: list[ExportConfig] = []
    for position, item in enumerate(items):
        try:
            exports.append(_parse_export_item(item, file, position, segments, catalogue))
        except ExportError as exc:
            errors.append(exc)
    if errors:
        raise ExportValidationError(errors, exports)
    return exports


def _fail_file(file: str, problem: str) -> NoReturn:
    """Raise an ExportValidationError for a problem with a whole file."""
    raise ExportValidationError([ExportError(file, problem)])


def _export_label(item: Any, position: int) -> str:
    """How errors name an export: its quoted name or segment, else its place in the file."""
    if isinstance(item, Mapping):
        for key in ("name", "segment"):
            if isinstance(item.get(key), str) and item[key]:
                return repr(item[key])
    return f"#{position + 1}"


def _check_keys(item: Any, error: Callable[..., ExportError]) -> None:
    """Raise unless `item` is a mapping of known keys that has every required one."""
    if not isinstance(item, Mapping):
        raise error(f"expected a mapping (segment, description, ...), got {item!r}")
    for key in item:
        if key not in EXPORT_KEYS:
            raise error(
                f"unknown key{_did_you_mean(key, EXPORT_KEYS)}; an export has "
                + ", ".join(EXPORT_KEYS),
                str(key),
            )
    for key in REQUIRED_KEYS:
        if item.get(key) is None or item.get(key) == "":
            raise error(
                "missing; every export needs " + ", ".join(REQUIRED_KEYS) + " (name and "
                "attributes are optional)",
                key,
            )


def _segment_name(
    item: Mapping[str, Any], segments: Mapping[str, Segment], error: Callable[..., ExportError]
) -> str:
    """The export's `segment`, which must name one of `segments`."""
    segment_name = item["segment"]
    if not isinstance(segment_name, str) or segment_name not in segments:
        raise error(
            f"unknown segment {segment_name!r}{_did_you_mean(segment_name, segments)}; name a "
            "segment from dbt_project/segments",
            "segment",
        )
    return segment_name


def _export_name(
    item: Mapping[str, Any], segment_name: str, error: Callable[..., ExportError]
) -> str:
    """The export's `name` (default: its segment's), which must be a slug."""
    name = item.get("name", segment_name)
    if not isinstance(name, str) or not _SLUG.match(name):
        raise error(
            f"{name!r} is not a slug; use lower-case letters, digits and underscores, starting "
            "with a letter (it names the folder under data/exports)",
            "name",
        )
    return name


def _description(value: Any, error: Callable[..., ExportError]) -> str:
    """The export's `description`, a non-empty sentence, with its whitespace collapsed."""
    if not isinstance(value, str) or not value.strip():
        raise error("must be a sentence saying what the export is for", "description")
    return " ".join(value.split())


def _holdout_percent(value: Any, error: Callable[..., ExportError]) -> float:
    """`holdout_percent`: a number from 0 to MAX_HOLDOUT_PERCENT with at most two decimals."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_HOLDOUT_PERCENT
    ):
        raise error(
            f"{value!r} is not a number from 0 to {MAX_HOLDOUT_PERCENT} (the percentage of "
            "the audience kept out of the files to measure lift; 0 means no holdout)",
            "holdout_percent",
        )
    if abs(value * 100 - round(value * 100)) > 1e-9:
        raise error(
            f"{value!r} has more than two decimals; holdouts are drawn in steps of 0.01%",
            "holdout_percent",
        )
    return float(value)


def _window_days(value: Any, error: Callable[..., ExportError]) -> int:
    """`measurement_window_days`: a whole number from MIN_WINDOW_DAYS to MAX_WINDOW_DAYS."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_WINDOW_DAYS <= value <= MAX_WINDOW_DAYS
    ):
        raise error(
            f"{value!r} is not a whole number of days from {MIN_WINDOW_DAYS} to "
            f"{MAX_WINDOW_DAYS} (how long after the export date conversions count)",
            "measurement_window_days",
        )
    return value


def _parse_export_item(
    item: Any, file: str, position: int, segments: Mapping[str, Segment], catalogue: Catalogue
) -> ExportConfig:
    """One export of a file as an `ExportConfig`; the first problem found is an ExportError
    naming the file, the export and the key."""
    label = _export_label(item, position)

    def error(problem: str, key: str = "") -> ExportError:
        """An ExportError naming this file and export."""
        return ExportError(file, problem, label, key)

    _check_keys(item, error)
    segment_name = _segment_name(item, segments, error)
    name = _export_name(item, segment_name, error)
    description = _description(item["description"], error)
    attributes = _attributes(item.get("attributes"), catalogue, error)
    formats = _formats(item.get("formats", _DEFAULT), segments[segment_name], error)
    if attributes and "csv" not in formats:
        raise error(
            f"only audience.csv carries chosen attributes, and this export writes no csv "
            f"(formats: {', '.join(formats)}); remove `attributes` (audience.parquet always "
            "has every attribute)",
            "attributes",
        )
    return ExportConfig(
        name=name,
        segment=segment_name,
        description=description,
        attributes=attributes,
        holdout_percent=_holdout_percent(item["holdout_percent"], error),
        measurement_window_days=_window_days(item["measurement_window_days"], error),
        file=file,
        formats=formats,
    )


def _attributes(value: Any, catalogue: Catalogue, error: Any) -> tuple[str, ...]:
    """The export's chosen `attributes`: catalogue columns, each once, none of FIXED_COLUMNS."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise error(
            f"expected a list of column names, e.g. [rfm_segment, orders_90d], got {value!r}",
            "attributes",
        )
    seen: set[str] = set()
    for position, column in enumerate(value):
        key = f"attributes[{position}]"
        if column in FIXED_COLUMNS:
            raise error(
                f"{column!r} is always in audience.csv ({', '.join(FIXED_COLUMNS)} come first); "
                "remove it",
                key,
            )
        if catalogue.get(column) is None:
            raise error(
                f"unknown attribute {column!r}{catalogue.suggest(column)}; use a column of "
                f"{catalogue.model} listed in {catalogue.origin}",
                key,
            )
        if column in seen:
            raise error(f"{column!r} is listed twice", key)
        seen.add(column)
    return tuple(value)


_DEFAULT = object()  # `formats` not given: every format the purpose allows


def _formats(value: Any, segment: Segment, error: Any) -> tuple[str, ...]:
    """The export's `formats` in FORMATS order (default: every format the segment's consent
    purpose allows); each must be known, listed once and allowed for that purpose."""
    purpose = segment.consent_purpose
    if purpose not in PURPOSE_FORMATS:
        raise error(
            f"segment {segment.name!r} has consent_purpose {purpose!r}, for which no export "
            f"formats exist; exports are for {', '.join(PURPOSE_FORMATS)}",
            "segment",
        )
    allowed = PURPOSE_FORMATS[purpose]
    if value is _DEFAULT:
        return allowed
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise error(
            f"expected a list of formats from {', '.join(FORMATS)}, e.g. "
            f"[{', '.join(allowed)}], got {value!r}; leave it out to write every format "
            f"{purpose} allows",
            "formats",
        )
    if not value:
        raise error(
            f"is empty, so the export would write no file; list at least one of "
            f"{', '.join(allowed)} (what {purpose} allows), or leave `formats` out for all of "
            "them",
            "formats",
        )
    seen: set[str] = set()
    for position, name in enumerate(value):
        key = f"formats[{position}]"
        if name not in FORMAT_FILES:
            raise error(
                f"unknown format {name!r}{_did_you_mean(name, FORMATS)}; formats are "
                + ", ".join(f"{f} ({file})" for f, file in FORMAT_FILES.items()),
                key,
            )
        if name in seen:
            raise error(f"{name!r} is listed twice", key)
        seen.add(name)
        if name not in allowed:
            others = [p for p, formats in PURPOSE_FORMATS.items() if name in formats]
            raise error(
                f"{name} ({FORMAT_FILES[name]}: {FORMAT_USES[name]}) is not allowed: segment "
                f"{segment.name!r} has consent_purpose {purpose}, which allows only "
                f"{', '.join(allowed)}; {name} needs a segment whose consent_purpose is "
                f"{' or '.join(others)}. Remove it, or export a segment with that purpose",
                key,
            )
    return tuple(f for f in FORMATS if f in seen)


def check_segment_matches(config: ExportConfig, segment: Segment) -> None:
    """Raise ValueError when `segment` is not the segment the export is configured for."""
    if config.segment != segment.name:
        raise ValueError(
            f"export {config.name!r} ({config.file}) is for segment {config.segment!r}, but "
            f"segment {segment.name!r} was passed; pass the export's own segment"
        )


def segment_for(config: ExportConfig, segments: Iterable[Segment]) -> Segment:
    """The segment an export writes; KeyError naming the export when it is not among them."""
    for segment in segments:
        if segment.name == config.segment:
            return segment
    raise KeyError(
        f"export {config.name!r} ({config.file}) names segment {config.segment!r}, which is not "
        "among the segments given; load them from dbt_project/segments"
    )


__all__ = [
    "EXPORTS_DIR",
    "EXPORT_KEYS",
    "FORMATS",
    "FORMAT_FILES",
    "MAX_HOLDOUT_PERCENT",
    "PURPOSE_FORMATS",
    "ExportConfig",
    "ExportConfigError",
    "ExportError",
    "ExportValidationError",
    "allowed_formats",
    "check_segment_matches",
    "load_exports",
    "parse_export_file",
    "parse_exports",
    "segment_for",
]
