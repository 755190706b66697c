"""A user's column rules and identifier patterns, from feeds.local.yml, checked.

ml/landing/contracts.py merges a user's overrides file over feeds.yml; this module reads the
two parts of it that change rules rather than how files are written:

    identifier_patterns:            # what a customer reference looks like, per kind
      crm_id: '^[0-9]{5}$'
    feeds:
      orders:
        columns:
          order_id: {pattern: '^[0-9]{6}$'}          # replace the column's pattern (null: none)
          channel:  {default: web}                   # the export has no such column
          status:   {values: {Completed: completed, C: cancelled}}
          currency: {allowed: [GBP]}                 # only some of the allowed values
          line_number: {derive: sequence}            # rows of one order numbered in file order

Per column, `pattern`, `allowed` (for a column with allowed values in feeds.yml, some of
them: Teal's dbt models test and read those values, so a value of yours that is not among them
is mapped onto one with `values`), `values` (your value -> ours, matched exactly once trimmed),
`default` (a constant for a column the file does not have) and `derive` (`sequence`, or
`{concat: [column, ...]}`).
Every value is checked here, so a mistake stops the run before any file is read, with a
message naming the overrides file, the feed, the column and the key.

A pattern must compile both for Python (the normalisers, Great Expectations) and for DuckDB's
RE2 (the loader), and must not nest one open-ended repeat inside another (`(a+)+`): Python's
matcher can take exponential time on such a pattern, so it is refused up front.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import duckdb

# contracts.Column and contracts.Feed: contracts imports this module, never the other way round
Column = Any
Feed = Any

try:  # Python 3.11+ (sre_parse is the deprecated name of the same module)
    import re._constants as _sre_constants
    import re._parser as _sre_parser
except ImportError:  # pragma: no cover
    import sre_constants as _sre_constants
    import sre_parse as _sre_parser

COLUMN_KEYS = ("pattern", "allowed", "values", "default", "derive")
DERIVE_SEQUENCE = "sequence"
CONCAT_SEPARATOR = "-"
_REPEATS = {_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT}
if hasattr(_sre_constants, "POSSESSIVE_REPEAT"):
    _REPEATS.add(_sre_constants.POSSESSIVE_REPEAT)


class RuleError(ValueError):
    """A rule of the overrides file is wrong; contracts raises it as a ContractError."""


def _error(message: str) -> Exception:
    return RuleError(message)


# --------------------------------------------------------------------------- patterns


def pattern_problem(pattern: object) -> str | None:
    """Why `pattern` cannot be a rule (None when it can): it must be text that compiles for
    Python and for DuckDB (RE2), without an open-ended repeat nested in another repeat."""
    if not isinstance(pattern, str) or not pattern:
        return f"{pattern!r} is not a regular expression (write it in quotes, e.g. '^[0-9]{{5}}$')"
    try:
        parsed = _sre_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"{pattern!r} does not compile: {exc}"
    if _nested_repeat(parsed, outer=None):
        return (
            f"{pattern!r} repeats a part that is itself repeated (as in '(a+)+'), which can "
            "take exponential time to match; write it with one repeat, e.g. '^[a-z0-9-]+$'"
        )
    try:
        with duckdb.connect() as connection:
            connection.execute("select regexp_full_match('', ?)", [pattern]).fetchone()
    except duckdb.Error as exc:
        detail = str(exc).splitlines()[0]
        return (
            f"{pattern!r} is not understood by DuckDB's regular expressions (RE2: no "
            f"look-arounds or back-references): {detail}"
        )
    return None


def _nested_repeat(parsed: Any, outer: tuple[int, int] | None) -> bool:
    """Whether a repeat inside another can match the same text in exponentially many ways:
    an open-ended repeat inside one that repeats more than once, or a variable repeat inside
    an open-ended one."""
    unbounded = _sre_constants.MAXREPEAT
    for op, av in parsed:
        if op in _REPEATS:
            low, high, body = av
            if outer is not None:
                outer_high = outer[1]
                if (high == unbounded and outer_high > 1) or (
                    outer_high == unbounded and high > low
                ):
                    return True
            here = (low, high) if high > 1 else outer
            if _nested_repeat(body, here):
                return True
            continue
        for child in _subpatterns(av):
            if _nested_repeat(child, outer):
                return True
    return False


def _subpatterns(value: Any) -> Iterator[Any]:
    if isinstance(value, _sre_parser.SubPattern):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _subpatterns(item)


def checked_pattern(pattern: object, where: str) -> str:
    problem = pattern_problem(pattern)
    if problem:
        raise _error(f"{where}: {problem}")
    return str(pattern)


def identifier_patterns(
    base: dict[str, str], raw: object, file: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(the merged identifier patterns, the ones the file changed) from the file's top-level
    `identifier_patterns:`."""
    if raw is None:
        return dict(base), {}
    where = f"{file}: identifier_patterns"
    if not isinstance(raw, dict) or not raw:
        raise _error(f"{where}: write it as {{crm_id: '<pattern>', loyalty_id: '<pattern>'}}")
    changed = {}
    for kind, pattern in raw.items():
        if kind not in base:
            raise _error(f"{where}: {kind!r} is not an identifier kind ({', '.join(base)})")
        changed[kind] = checked_pattern(pattern, f"{where}.{kind}")
        if re.search("[a-z]", re.sub(r"\\.", "", changed[kind])):
            raise _error(
                f"{where}.{kind}: {pattern!r} has lower-case letters, but a reference is "
                "upper-cased before it is matched (c0012345 is C0012345): write them in capitals"
            )
    return {**base, **changed}, changed


# --------------------------------------------------------------------------- columns


def _text(value: object, where: str) -> str:
    """A YAML scalar as the text a file would hold: `5` -> '5'; refuses lists, maps and
    booleans (YAML reads yes/no/true/false as booleans: quote them)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _error(f"{where}: {value!r} is not a single value (quote text such as 'yes')")
    return str(value).strip()


def _text_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _error(f"{where}: write the values as a list, e.g. [GBP, AUD]")
    texts = tuple(_text(v, where) for v in value)
    if any(not t for t in texts):
        raise _error(f"{where}: an empty value cannot be allowed (empty means missing)")
    return tuple(dict.fromkeys(texts))


def _fits(column: Column, value: str, where: str, what: str) -> None:
    """Refuse a value (a mapped value, a default) that the column's rules would refuse."""
    if column.allowed and value not in column.allowed:
        raise _error(f"{where}: {what} {value!r} is not one of {', '.join(column.allowed)}")
    if column.pattern and not re.search(column.pattern, value):
        raise _error(f"{where}: {what} {value!r} does not match {column.pattern}")
    if column.type == "integer" and not re.fullmatch(r"[+-]?[0-9]+", value):
        raise _error(f"{where}: {what} {value!r} is not a whole number")
    if column.type == "decimal" and not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", value):
        raise _error(f"{where}: {what} {value!r} is not a decimal number such as 12.50")


def column_overrides(feed: Feed, raw: object, file: str) -> dict[str, Column]:
    """The feed's columns changed by the file's `columns:` (only the changed ones, by name)."""
    if raw is None:
        return {}
    where = f"{file}: feed {feed.name!r}, columns"
    if not isinstance(raw, dict):
        raise _error(f"{where}: write it as {{<column>: {{default: ..., pattern: ...}}}}")
    changed: dict[str, Column] = {}
    names = feed.column_names
    for name, rules in raw.items():
        if name not in names:
            raise _error(f"{where}: {name!r} is not a column of the feed ({', '.join(names)})")
        here = f"{where}.{name}"
        if not isinstance(rules, dict) or not rules:
            raise _error(f"{here}: write a mapping of any of {', '.join(COLUMN_KEYS)}")
        unknown = sorted(set(rules) - set(COLUMN_KEYS))
        if unknown:
            raise _error(f"{here}: unknown key(s) {unknown}; known: {', '.join(COLUMN_KEYS)}")
        changed[name] = _column_with(feed, feed.column(name), rules, here)
    _check_concat_sources(feed, changed, where)
    return changed


def _column_with(feed: Feed, column: Column, rules: dict, where: str) -> Column:
    values: dict[str, Any] = {}
    if "pattern" in rules:
        pattern = rules["pattern"]
        values["pattern"] = (
            None if pattern is None else checked_pattern(pattern, f"{where}.pattern")
        )
    if "allowed" in rules:
        allowed = _text_list(rules["allowed"], f"{where}.allowed")
        beyond = [a for a in allowed if column.allowed and a not in column.allowed]
        if beyond:
            raise _error(
                f"{where}.allowed: {', '.join(beyond)} is not one of {', '.join(column.allowed)}:"
                f" Teal's models test and read these values, so map yours onto them instead, "
                f"e.g. values: {{{beyond[0]}: {column.allowed[0]}}}"
            )
        values["allowed"] = allowed
    column = replace(column, **values)
    if "values" in rules:
        column = replace(column, values=_value_map(column, rules["values"], f"{where}.values"))
    if "default" in rules and "derive" in rules:
        raise _error(f"{where}: a column takes a default or a derive, not both")
    if "default" in rules:
        column = replace(column, default=_default(column, rules["default"], f"{where}.default"))
    if "derive" in rules:
        column = replace(column, derive=_derive(feed, column, rules["derive"], f"{where}.derive"))
    return column


def _value_map(column: Column, raw: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not raw:
        raise _error(f"{where}: write it as {{<your value>: <contract value>, ...}}")
    pairs = []
    for theirs, ours in raw.items():
        theirs_text, ours_text = _text(theirs, where), _text(ours, f"{where}.{theirs}")
        if not theirs_text or not ours_text:
            raise _error(f"{where}: {theirs!r} -> {ours!r}: neither side may be empty")
        _fits(column, ours_text, f"{where}.{theirs_text}", "maps to")
        pairs.append((theirs_text, ours_text))
    return tuple(pairs)


def _default(column: Column, raw: object, where: str) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if column.required:
            raise _error(f"{where}: {column.name} is required, so its default cannot be empty")
        return ""
    value = _text(raw, where)
    _fits(column, value, where, "default")
    return value


def _derive(feed: Feed, column: Column, raw: object, where: str) -> str | tuple[str, ...]:
    if raw == DERIVE_SEQUENCE:
        others = [k for k in feed.key if k != column.name]
        if column.type != "integer" or column.name not in feed.key or not others:
            raise _error(
                f"{where}: sequence numbers an integer key column within the rest of the key "
                f"(key of {feed.name}: {', '.join(feed.key)})"
            )
        return DERIVE_SEQUENCE
    if isinstance(raw, dict) and set(raw) == {"concat"}:
        sources = raw["concat"]
        if (
            not isinstance(sources, list)
            or not sources
            or not all(isinstance(s, str) and s in feed.column_names for s in sources)
            or column.name in sources
        ):
            raise _error(
                f"{where}.concat: list other columns of the feed, e.g. [customer_ref, ordered_at]"
            )
        if column.type != "string":
            raise _error(f"{where}: concat makes text, and {column.name} is {column.type}")
        return tuple(sources)
    raise _error(f"{where}: {raw!r} is not sequence or {{concat: [<column>, ...]}}")


def _check_concat_sources(feed: Feed, changed: dict[str, Column], where: str) -> None:
    """A concat reads columns as the file has them: none of them may be derived in turn."""
    for name, column in changed.items():
        if isinstance(column.derive, tuple):
            derived = [s for s in column.derive if s in changed and changed[s].derive]
            if derived:
                raise _error(
                    f"{where}.{name}.derive: {', '.join(derived)} is derived too; concat "
                    "reads columns the file has (or their defaults)"
                )


def follow_identifier_patterns(
    column: Column, base: dict[str, str], changed: dict[str, str]
) -> Column:
    """A column whose contract pattern is an identifier pattern (crm.crm_id is the crm_id
    pattern) follows that pattern when the overrides file changes it."""
    for kind, pattern in changed.items():
        if column.pattern is not None and column.pattern == base.get(kind):
            return replace(column, pattern=pattern)
    return column
