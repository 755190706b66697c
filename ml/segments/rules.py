"""Segment files: reading them and checking every key, field, operator, value and window.

A segment file (`dbt_project/segments/*.yml`) holds one segment, or `segments:` followed by a
list of them; the format is described at the top of `dbt_project/segments/behaviour.yml`.
`load_segments()` reads a folder (or files) against a `Catalogue` and returns `Segment`s, or
raises `SegmentValidationError` listing the first problem of every broken segment, each
naming the file, the segment and where in it (`rules.all[1].behaviour.in_the_last`).

Nothing here touches a database: a file is valid or not before anything runs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from ml.as_of import naive_utc
from ml.landing import contracts
from ml.segments.catalogue import (
    BOOLEAN,
    DATE,
    NUMBER,
    REPO_ROOT,
    TEXT,
    TIMESTAMP,
    Catalogue,
    Field,
)
from ml.yamlfile import YamlFileError, clipped, described, read_yaml

SEGMENT_KEYS = ("name", "description", "owner", "type", "consent_purpose", "rules")
SEGMENT_TYPES = ("dynamic", "static")
CONSENT_PURPOSES = ("email_marketing", "ads_personalization", "analytics")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "between", "is null", "is not null")
# The event types the loader accepts, from the clickstream feed's contract (one place).
EVENT_TYPES: tuple[str, ...] = contracts.load()["clickstream"].column("event_type").allowed or ()
BEHAVIOUR_KEYS = (
    "event",
    "at_least",
    "at_most",
    "in_the_last",
    "within",
    "same_product",
    "product",
    "category",
    "url_contains",
)
CONDITION_KEYS = ("field", "operator", "value")
RULE_KEYS = ("all", "any", "not", "field", "behaviour")
WINDOW_UNITS = {"minute": 1, "hour": 60, "day": 1440}
MAX_CATEGORY_LEVELS = 4  # category_level_1, _2, _3 and category_name

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WINDOW = re.compile(r"^(\d+)\s*(minute|hour|day)s?$")
_NO_VALUE = ("is null", "is not null")
_OPERATOR_ALIASES = {"=>": ">=", "=<": "<=", "<>": "!=", "==": "=", "equals": "="}
_LIST_VALUE = ("in", "not in")
_ORDERED = (NUMBER, DATE, TIMESTAMP)
# Which operators each kind of field accepts.
_KIND_OPERATORS = {
    NUMBER: OPERATORS,
    DATE: OPERATORS,
    TIMESTAMP: OPERATORS,
    TEXT: ("=", "!=", "in", "not in", "is null", "is not null"),
    BOOLEAN: ("=", "!=", "is null", "is not null"),
}
_KIND_WORDS = {
    NUMBER: ("numbers", "write a number without quotes, e.g. 30"),
    TEXT: ("text", "write it in quotes"),
    BOOLEAN: ("true/false", "write true or false without quotes"),
    DATE: ("dates", "write a date as YYYY-MM-DD, e.g. 2026-11-20"),
    TIMESTAMP: ("timestamps", "write 'YYYY-MM-DD HH:MM:SS' (UTC) or a date"),
}


class SegmentError(ValueError):
    """One problem in one segment file: `file`, `segment`, `location` and what is wrong."""

    def __init__(self, file: str, problem: str, segment: str | None = None, location: str = ""):
        self.file = file
        self.segment = segment
        self.location = location
        self.problem = problem = clipped(problem)
        where = file if segment is None else f"{file}: segment {segment}"
        super().__init__(f"{where}: {location}: {problem}" if location else f"{where}: {problem}")


class SegmentValidationError(ValueError):
    """Segment files that failed validation; `errors` holds one `SegmentError` per problem."""

    def __init__(self, errors: Sequence[SegmentError], valid: Sequence[Segment] = ()):
        self.errors = tuple(errors)
        self.valid = tuple(valid)  # the segments of the same files that did validate
        count = len(self.errors)
        heading = f"{count} segment problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([heading, *(f"  {e}" for e in self.errors)]))

    def messages(self) -> list[str]:
        """The message of each problem, in file order."""
        return [str(e) for e in self.errors]


@dataclass(frozen=True)
class Window:
    """A length of time written as 'N minutes|hours|days'."""

    amount: int
    unit: str

    @property
    def delta(self) -> timedelta:
        """The window as a timedelta."""
        return timedelta(minutes=self.amount * WINDOW_UNITS[self.unit])

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}{'' if self.amount == 1 else 's'}"


@dataclass(frozen=True)
class FieldCondition:
    """`field operator value` over one column of the attribute table.

    `value` is a scalar for comparisons, a tuple for in/not in/between, None for is (not)
    null. A condition on a missing (null) value is false, except `is null`; `not` turns that
    false into true.
    """

    field: Field
    operator: str
    value: Any = None


@dataclass(frozen=True)
class BehaviourCondition:
    """At least (or at most) k clickstream events of some types, filtered and windowed.

    `in_the_last`: only events in [as_of - window, as_of). `within`: k events inside one
    sliding window of that length (first to last at most that far apart). `same_product`:
    count per product (k events on one product). `products`, `categories` (paths as
    tuples of levels) and `url_contains` keep events matching any of their values.
    """

    events: tuple[str, ...]
    at_least: int | None = None
    at_most: int | None = None
    in_the_last: Window | None = None
    within: Window | None = None
    same_product: bool = False
    products: tuple[str, ...] = ()
    categories: tuple[tuple[str, ...], ...] = ()
    url_contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class AllOf:
    """True when every condition is."""

    conditions: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    """True when at least one condition is."""

    conditions: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    """True when the condition is not."""

    condition: Rule


Rule = FieldCondition | BehaviourCondition | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Segment:
    """One validated segment from a file."""

    name: str
    description: str
    owner: str
    type: str
    consent_purpose: str
    rules: Rule
    file: str = "<segment>"

    @property
    def is_static(self) -> bool:
        """True for a static segment (frozen when first built)."""
        return self.type == "static"

    @property
    def definition_hash(self) -> str:
        """sha256 of the rules in canonical form: it changes exactly when the rules do."""
        text = json.dumps(rule_to_data(self.rules), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rule_to_data(rule: Rule) -> Any:
    """The rule tree as plain JSON-able data (for hashing and display)."""
    if isinstance(rule, AllOf):
        return {"all": [rule_to_data(r) for r in rule.conditions]}
    if isinstance(rule, AnyOf):
        return {"any": [rule_to_data(r) for r in rule.conditions]}
    if isinstance(rule, Not):
        return {"not": rule_to_data(rule.condition)}
    if isinstance(rule, FieldCondition):
        data: dict[str, Any] = {"field": rule.field.name, "operator": rule.operator}
        if rule.operator not in _NO_VALUE:
            data["value"] = _plain(rule.value)
        return data
    behaviour: dict[str, Any] = {"event": list(rule.events)}
    for key in ("at_least", "at_most", "in_the_last", "within"):
        value = getattr(rule, key)
        if value is not None:
            behaviour[key] = str(value) if isinstance(value, Window) else value
    if rule.same_product:
        behaviour["same_product"] = True
    if rule.products:
        behaviour["product"] = list(rule.products)
    if rule.categories:
        behaviour["category"] = [" > ".join(levels) for levels in rule.categories]
    if rule.url_contains:
        behaviour["url_contains"] = list(rule.url_contains)
    return {"behaviour": behaviour}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- reading files ----------------------------------------------------------------------------


def segment_files(location: str | Path | Iterable[str | Path]) -> list[Path]:
    """The .yml/.yaml files of a folder (sorted by name), or the given files as they are."""
    if isinstance(location, str | Path):
        path = Path(location)
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml"))
        return [path]
    return [Path(p) for p in location]


def load_segments(
    location: str | Path | Iterable[str | Path], catalogue: Catalogue
) -> list[Segment]:
    """Read and check every segment in a folder or list of files against `catalogue`.

    Returns the segments in file order. Raises `SegmentValidationError` with the first problem
    of every broken segment (and of every unreadable file), so one run shows them all.
    """
    files = segment_files(location)
    errors: list[SegmentError] = []
    segments: list[Segment] = []
    seen: dict[str, str] = {}
    if not files:
        raise SegmentValidationError(
            [SegmentError(str(location), "holds no segment files (*.yml); add one")]
        )
    for path in files:
        try:
            parsed = parse_segment_file(path, catalogue)
        except SegmentValidationError as exc:
            errors.extend(exc.errors)
            parsed = list(exc.valid)
        for segment in parsed:
            if segment.name in seen:
                errors.append(
                    SegmentError(
                        segment.file,
                        f"name already used in {seen[segment.name]}; segment names must be unique",
                        repr(segment.name),
                    )
                )
                continue
            seen[segment.name] = segment.file
            segments.append(segment)
    if errors:
        raise SegmentValidationError(errors, segments)
    return segments


def parse_segment_file(path: str | Path, catalogue: Catalogue) -> list[Segment]:
    """The segments of one file; `SegmentValidationError` (with `.valid`) if any is broken."""
    path = Path(path)
    file = _display(path)
    try:
        data = read_yaml(path)
    except YamlFileError as error:
        hint = ""
        if error.problem.startswith("is not valid YAML"):
            hint = "; quote operators such as '>=' and '!=', and text holding a colon"
        _fail_file(file, described(error) + hint)
    return parse_segments(data, file, catalogue)


def parse_segments(data: Any, file: str, catalogue: Catalogue) -> list[Segment]:
    """The segments of already-parsed YAML `data` that came from `file`."""
    if isinstance(data, Mapping) and "segments" in data:
        others = [k for k in data if k != "segments"]
        if others:
            _fail_file(
                file,
                f"unknown key {others[0]!r} beside `segments:`; put it inside a segment",
            )
        items = data["segments"]
        if not isinstance(items, list) or not items:
            _fail_file(file, "`segments:` must be followed by a list of segments (`- name: ...`)")
    elif isinstance(data, Mapping):
        items = [data]
    else:
        _fail_file(
            file,
            "expected one segment (a mapping with name, description, owner, type, "
            "consent_purpose and rules) or `segments:` with a list of them",
        )
    errors: list[SegmentError] = []
    segments: list[Segment] = []
    for position, item in enumerate(items):
        try:
            segments.append(_segment(item, file, position, catalogue))
        except SegmentError as exc:
            errors.append(exc)
    if errors:
        raise SegmentValidationError(errors, segments)
    return segments


def _display(path: Path) -> str:
    """A path as messages show it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _fail_file(file: str, problem: str) -> NoReturn:
    raise SegmentValidationError([SegmentError(file, problem)])


# --- one segment ------------------------------------------------------------------------------


class _Context:
    """Where we are, to build messages that name the file, the segment and the location."""

    def __init__(self, file: str, segment: str, catalogue: Catalogue):
        self.file = file
        self.segment = segment
        self.catalogue = catalogue

    def error(self, problem: str, location: str = "") -> SegmentError:
        return SegmentError(self.file, problem, self.segment, location)


def _segment(item: Any, file: str, position: int, catalogue: Catalogue) -> Segment:
    name = item.get("name") if isinstance(item, Mapping) else None
    label = repr(name) if isinstance(name, str) and name else f"#{position + 1}"
    ctx = _Context(file, label, catalogue)
    if not isinstance(item, Mapping):
        raise ctx.error(f"expected a mapping (name, description, ...), got {item!r}")
    for key in item:
        if key not in SEGMENT_KEYS:
            raise ctx.error(
                f"unknown key {key!r}{_did_you_mean(key, SEGMENT_KEYS)}; a segment has "
                + ", ".join(SEGMENT_KEYS)
            )
    for key in SEGMENT_KEYS:
        if key not in item or item[key] is None or item[key] == "":
            raise ctx.error(f"missing {key!r}; every segment needs " + ", ".join(SEGMENT_KEYS))
    if not isinstance(name, str) or not _SLUG.match(name):
        raise ctx.error(
            f"name {name!r} is not a slug; use lower-case letters, digits and underscores, "
            "starting with a letter (e.g. 'cart_abandoners_24h')"
        )
    description = item["description"]
    if not isinstance(description, str) or not description.strip():
        raise ctx.error("description must be a sentence saying who is in the segment")
    owner = item["owner"]
    if not isinstance(owner, str) or not _EMAIL.match(owner.strip()):
        raise ctx.error(
            f"owner {owner!r} is not an email address; name the team that answers for the "
            "segment (e.g. 'crm-team@teal.example')"
        )
    kind = item["type"]
    if kind not in SEGMENT_TYPES:
        raise ctx.error(
            f"type {kind!r} is not static or dynamic (dynamic: recomputed every run; "
            "static: frozen when first built)"
        )
    purpose = item["consent_purpose"]
    if purpose not in CONSENT_PURPOSES:
        raise ctx.error(
            f"consent_purpose {purpose!r}{_did_you_mean(purpose, CONSENT_PURPOSES)} is not one "
            "of " + ", ".join(CONSENT_PURPOSES)
        )
    rules = _rule(item["rules"], "rules", ctx)
    return Segment(
        name=name,
        description=" ".join(description.split()),
        owner=owner.strip(),
        type=kind,
        consent_purpose=purpose,
        rules=rules,
        file=file,
    )


def _rule(node: Any, location: str, ctx: _Context) -> Rule:
    if not isinstance(node, Mapping) or not node:
        raise ctx.error(
            "expected a condition (field/operator/value, or behaviour) or all, any or not; "
            f"got {node!r}",
            location,
        )
    starts = [key for key in RULE_KEYS if key in node]
    if not starts:
        key = next(iter(node))
        raise ctx.error(
            f"unknown key {key!r}{_did_you_mean(key, RULE_KEYS + CONDITION_KEYS)}; a rule "
            "starts with all, any, not, field or behaviour",
            location,
        )
    if len(starts) > 1:
        raise ctx.error(
            f"holds both {starts[0]!r} and {starts[1]!r}; write one rule per list item "
            "(put several under all or any)",
            location,
        )
    start = starts[0]
    if start == "field":
        return _field_condition(node, location, ctx)
    extra = [key for key in node if key != start]
    if extra:
        raise ctx.error(
            f"unknown key {extra[0]!r} beside {start!r}; a {start} rule has nothing else",
            location,
        )
    inner = f"{location}.{start}"
    if start == "behaviour":
        return _behaviour(node[start], inner, ctx)
    if start == "not":
        return Not(_rule(node["not"], inner, ctx))
    children = node[start]
    if not isinstance(children, list) or not children:
        raise ctx.error(f"{start} needs a list of at least one condition (`- field: ...`)", inner)
    rules = tuple(_rule(child, f"{inner}[{i}]", ctx) for i, child in enumerate(children))
    return AllOf(rules) if start == "all" else AnyOf(rules)


def _condition_field(node: Mapping[str, Any], location: str, ctx: _Context) -> Field:
    """The catalogue field a condition names; an error for an unknown key or field."""
    for key in node:
        if key not in CONDITION_KEYS:
            raise ctx.error(
                f"unknown key {key!r}{_did_you_mean(key, CONDITION_KEYS)}; a field condition "
                "has field, operator and value",
                location,
            )
    name = node["field"]
    field = ctx.catalogue.get(name) if isinstance(name, str) else None
    if field is None:
        raise ctx.error(
            f"unknown field {name!r}{ctx.catalogue.suggest(str(name))}; use a column of "
            f"{ctx.catalogue.model} listed in {ctx.catalogue.origin}",
            location,
        )
    return field


def _condition_operator(node: Mapping[str, Any], field: Field, location: str, ctx: _Context) -> str:
    """The condition's operator in its normal form (lower case, single spaces); an error when
    it is missing, unknown, or does not apply to the field's kind."""
    where = f"field {field.name!r}"
    operator = node.get("operator")
    if operator is None:
        raise ctx.error(f"{where} has no operator; add one of {', '.join(OPERATORS)}", location)
    operator_text = " ".join(str(operator).lower().split()) if isinstance(operator, str) else None
    if operator_text not in OPERATORS:
        raise ctx.error(
            f"{where}: unknown operator {operator!r}{_operator_hint(operator)}; "
            f"use one of {', '.join(OPERATORS)} (quoted)",
            location,
        )
    allowed = _KIND_OPERATORS[field.kind]
    if operator_text not in allowed:
        raise ctx.error(
            f"{where} holds {_KIND_WORDS[field.kind][0]}; operator {operator_text!r} does not "
            f"apply to it (use {', '.join(allowed)})",
            location,
        )
    return operator_text


def _between_values(raw: Any, field: Field, location: str, ctx: _Context) -> tuple[Any, Any]:
    """The [low, high] of a `between`, checked: two values, low not above high."""
    where = f"field {field.name!r}"
    if not isinstance(raw, list) or len(raw) != 2:
        raise ctx.error(
            f"{where}: 'between' needs a list of two values [low, high], got {raw!r}",
            location,
        )
    low, high = (_scalar(v, field, location, ctx) for v in raw)
    if low > high:
        raise ctx.error(
            f"{where}: between [{_plain(low)}, {_plain(high)}] has low above high; write "
            f"[{_plain(high)}, {_plain(low)}]",
            location,
        )
    return low, high


def _field_condition(node: Mapping[str, Any], location: str, ctx: _Context) -> FieldCondition:
    """A field condition (field, operator, value) checked against the catalogue: the value
    must suit the operator (none, one, a list, or [low, high]) and the field's kind."""
    field = _condition_field(node, location, ctx)
    operator_text = _condition_operator(node, field, location, ctx)
    where = f"field {field.name!r}"
    if operator_text in _NO_VALUE:
        if "value" in node:
            raise ctx.error(
                f"{where}: operator {operator_text!r} takes no value; remove `value`", location
            )
        return FieldCondition(field, operator_text)
    if "value" not in node:
        raise ctx.error(f"{where}: operator {operator_text!r} needs a value", location)
    raw = node["value"]
    if operator_text in _LIST_VALUE:
        if not isinstance(raw, list) or not raw:
            raise ctx.error(
                f"{where}: {operator_text!r} needs a non-empty list of values, e.g. "
                f"[a, b], got {raw!r}",
                location,
            )
        values = tuple(_scalar(v, field, location, ctx) for v in raw)
        return FieldCondition(field, operator_text, values)
    if operator_text == "between":
        return FieldCondition(field, operator_text, _between_values(raw, field, location, ctx))
    if isinstance(raw, list | Mapping):
        raise ctx.error(
            f"{where}: operator {operator_text!r} compares with one value, got {raw!r} "
            "(for a list use in / not in)",
            location,
        )
    return FieldCondition(field, operator_text, _scalar(raw, field, location, ctx))


def _scalar(value: Any, field: Field, location: str, ctx: _Context) -> Any:
    kind = field.kind
    words, hint = _KIND_WORDS[kind]
    problem = f"field {field.name!r} holds {words} ({field.data_type}); {value!r} is "
    if kind == NUMBER:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ctx.error(problem + f"not a finite number; {hint}", location)
            return value
    elif kind == TEXT:
        if isinstance(value, str):
            return value
    elif kind == BOOLEAN:
        if isinstance(value, bool):
            return value
    elif kind == DATE:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ctx.error(problem + f"not a date; {hint}", location) from None
    elif kind == TIMESTAMP:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, datetime.min.time())
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise ctx.error(problem + f"not a timestamp; {hint}", location) from None
        else:
            moment = None
        if moment is not None:
            return naive_utc(moment)
    raise ctx.error(problem + f"{_describe(value)}; {hint}", location)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "a timestamp"
    if isinstance(value, date):
        return "a date"
    if value is None:
        return "empty"
    return f"a {type(value).__name__}"


def _behaviour(node: Any, location: str, ctx: _Context) -> BehaviourCondition:
    if not isinstance(node, Mapping):
        raise ctx.error(
            "expected a mapping with event and at_least or at_most, e.g. "
            "{event: product_view, at_least: 3}",
            location,
        )
    for key in node:
        if key not in BEHAVIOUR_KEYS:
            raise ctx.error(
                f"unknown key {key!r}{_did_you_mean(key, BEHAVIOUR_KEYS)}; a behaviour has event, "
                "at_least or at_most, and optionally in_the_last, within, same_product, product, "
                "category and url_contains",
                location,
            )
    if "event" not in node:
        raise ctx.error("missing 'event' (the event type to count, e.g. product_view)", location)
    events = _texts(node["event"], f"{location}.event", ctx, "event types")
    for event in events:
        if event not in EVENT_TYPES:
            raise ctx.error(
                f"unknown event type {event!r}{_did_you_mean(event, EVENT_TYPES)}; use one of "
                + ", ".join(EVENT_TYPES),
                f"{location}.event",
            )
    bounds = [key for key in ("at_least", "at_most") if key in node]
    if len(bounds) != 1:
        raise ctx.error(
            "give exactly one of at_least and at_most (how many events count)", location
        )
    bound = bounds[0]
    count = node[bound]
    smallest = 1 if bound == "at_least" else 0
    if isinstance(count, bool) or not isinstance(count, int) or count < smallest:
        raise ctx.error(
            f"expected a whole number of at least {smallest}, got {count!r}",
            f"{location}.{bound}",
        )
    in_the_last = _window(node, "in_the_last", location, ctx)
    within = _window(node, "within", location, ctx)
    same_product = node.get("same_product", False)
    if not isinstance(same_product, bool):
        raise ctx.error(f"expected true or false, got {same_product!r}", f"{location}.same_product")
    products = _texts(node.get("product"), f"{location}.product", ctx, "product ids")
    categories = tuple(
        _category(text, f"{location}.category", ctx)
        for text in _texts(node.get("category"), f"{location}.category", ctx, "category paths")
    )
    urls = _texts(node.get("url_contains"), f"{location}.url_contains", ctx, "url fragments")
    return BehaviourCondition(
        events=events,
        at_least=count if bound == "at_least" else None,
        at_most=count if bound == "at_most" else None,
        in_the_last=in_the_last,
        within=within,
        same_product=same_product,
        products=products,
        categories=categories,
        url_contains=urls,
    )


def _texts(value: Any, location: str, ctx: _Context, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ctx.error(
            f"expected {what}: quoted text or a non-empty list of it, got {value!r}", location
        )
    return tuple(v.strip() for v in items)


def _category(text: str, location: str, ctx: _Context) -> tuple[str, ...]:
    levels = tuple(part.strip() for part in text.split(">"))
    if not all(levels) or len(levels) > MAX_CATEGORY_LEVELS:
        raise ctx.error(
            f"{text!r} is not a category path; write up to {MAX_CATEGORY_LEVELS} levels "
            "separated by '>', e.g. 'Women > Shoes'",
            location,
        )
    return levels


def _window(node: Mapping[str, Any], key: str, location: str, ctx: _Context) -> Window | None:
    if key not in node:
        return None
    value = node[key]
    match = _WINDOW.match(" ".join(value.lower().split())) if isinstance(value, str) else None
    if match is None:
        raise ctx.error(
            f"{value!r} is not a window; write a whole number and minutes, hours or days, "
            "e.g. '48 hours'",
            f"{location}.{key}",
        )
    amount = int(match.group(1))
    if amount < 1:
        raise ctx.error(f"{value!r} is an empty window; use at least 1 minute", f"{location}.{key}")
    return Window(amount, match.group(2))


def _operator_hint(operator: Any) -> str:
    text = str(operator).strip()
    if text in _OPERATOR_ALIASES:
        return f" (did you mean {_OPERATOR_ALIASES[text]!r}?)"
    return _did_you_mean(text, OPERATORS)


def _did_you_mean(name: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
