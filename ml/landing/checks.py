"""The contract's rules as SQL: one expression per rule, giving a reason text or NULL.

Every column arrives as text. `column_value` trims it (empty text counts as missing) and, where
feeds.yml `read:` says how the file writes dates, timestamps or decimals, converts it to the
contract's form (ISO dates and timestamps, a decimal point) before the rules look at it; the
landed table keeps the converted text. Each rule is a `Check`: its SQL, and its `kind` (the
reason without the value) by which the dry run groups the rows it refuses.

Reasons name the column and show the value as received (clipped to 60 characters), e.g.
`status 'shipped' is not one of completed, refunded, cancelled` or `quantity -3 is below 1`.
`mask_reason` hides the personal values (`pii: true` and `erase_by: true` columns: a crm id
names a person too) of a reason for logs and metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ml.sql import quote_ident, quote_literal

from .contracts import Column, Feed, ReadOptions

TIMESTAMP_PATTERN = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
ISO_DATE_WORDS = "YYYY-MM-DD"
ISO_TIMESTAMP_WORDS = "ISO 8601 such as 2026-11-01T10:22:03+00:00"
SHOWN_LIMIT = 60


@dataclass(frozen=True)
class Check:
    """One rule of one column: SQL giving the reason text (NULL when the rule holds)."""

    column: str
    kind: str
    sql: str


def trimmed(name: str) -> str:
    """SQL for a column's value as the rules see it: trimmed, empty text as missing."""
    return f"nullif(trim(cast({quote_ident(name)} as varchar)), '')"


def _missing(name: str) -> str:
    """SQL: the value is missing (NULL, empty or blank), trimming only a value that starts
    with a blank (no other value can be blank)."""
    raw = f"cast({quote_ident(name)} as varchar)"
    return f"({raw} is null or {raw} = '' or (prefix({raw}, ' ') and trim({raw}) = ''))"


def _refuses(name: str, holds) -> str:
    """SQL: the trimmed value is present and the rule `holds(x)` (SQL over a value `x`) does
    not hold for it. The value as received is tried first: without blanks around it, it is its
    trimmed self, and most values pass there without being trimmed."""
    raw, v = f"cast({quote_ident(name)} as varchar)", trimmed(name)
    untrimmed = f"not prefix({raw}, ' ') and not suffix({raw}, ' ')"
    return (
        f"not coalesce({untrimmed} and {holds(raw)}, false) and {v} is not null and not {holds(v)}"
    )


def shown(expression: str, quoted: bool = True) -> str:
    """SQL that renders a value inside a message, shortened and (by default) quoted."""
    clipped = (
        f"(case when length({expression}) > {SHOWN_LIMIT} "
        f"then left({expression}, {SHOWN_LIMIT - 3}) || '...' else {expression} end)"
    )
    return f"'''' || {clipped} || ''''" if quoted else clipped


def converted(column: Column, options: ReadOptions, value: str) -> str | None:
    """SQL for the contract's form of a trimmed value written the feed's way (NULL when it
    cannot be read that way), or None when the column needs no conversion."""
    if column.type == "date" and options.date_format:
        return f"strftime(try_strptime({value}, {quote_literal(options.date_format)}), '%Y-%m-%d')"
    if column.type == "timestamp" and options.timestamp_format:
        fmt = options.timestamp_format
        parsed = f"try_strptime({value}, {quote_literal(fmt)})"
        fraction = ".%f" if re.search("%[fgn]", fmt) else ""
        if re.search("%[zZ]", fmt):  # an instant: written in UTC
            return f"strftime(timezone('UTC', {parsed}), '%Y-%m-%dT%H:%M:%S{fraction}') || 'Z'"
        return f"strftime({parsed}, '%Y-%m-%dT%H:%M:%S{fraction}')"
    if column.type == "decimal" and options.decimal == ",":
        dotted = f"replace({value}, ',', '.')"
        return f"(case when try_cast({dotted} as decimal(18, 4)) is not null then {dotted} end)"
    return None


def landed_value(column: Column, options: ReadOptions) -> str:
    """SQL for the text the landed table keeps: as received, or converted (see `converted`)."""
    raw = f"nullif(cast({quote_ident(column.name)} as varchar), '')"
    change = converted(column, options, trimmed(column.name))
    return raw if change is None else f"coalesce({change}, {raw})"


def _type_check(column: Column, options: ReadOptions, v: str) -> tuple[str | None, Check | None]:
    """The column's typed value (SQL) and the check that its text has the type."""
    name = column.name
    change = converted(column, options, v)
    if column.type == "integer":
        typed, words = f"try_cast({v} as bigint)", "is not a whole number"
    elif column.type == "decimal":
        text = change or v
        typed, words = f"try_cast({text} as decimal(18, 4))", "is not a decimal number"
    elif column.type == "date" and change:
        typed = f"try_strptime({v}, {quote_literal(options.date_format)})::date"
        words = f"is not a valid date (expected {options.date_format})"
    elif column.type == "date":
        typed = (
            f"(case when regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
            f"then try_strptime({v}, '%Y-%m-%d')::date end)"
        )
        words = f"is not a valid date (expected {ISO_DATE_WORDS})"
    elif column.type == "timestamp" and change:
        typed = f"try_strptime({v}, {quote_literal(options.timestamp_format)})::timestamptz"
        words = f"is not a valid timestamp (expected {options.timestamp_format})"
    elif column.type == "timestamp":
        typed = (
            f"(case when regexp_full_match({v}, {quote_literal(TIMESTAMP_PATTERN)}) "
            f"then try_cast({v} as timestamptz) end)"
        )
        words = f"is not a valid timestamp (expected {ISO_TIMESTAMP_WORDS})"
    else:
        return None, None
    sql = (
        f"case when {v} is not null and {typed} is null "
        f"then {quote_literal(name + ' ')} || {shown(v)} || {quote_literal(' ' + words)} end"
    )
    return typed, Check(name, f"{name} {words}", sql)


def _bound_checks(column: Column, typed: str | None, v: str) -> list[Check]:
    checks = []
    cast = {"date": "date", "timestamp": "timestamptz"}.get(column.type, "double")
    for bound, operator, words in ((column.min, "<", "is below"), (column.max, ">", "is above")):
        if bound is None or typed is None:
            continue
        limit = f"cast({quote_literal(bound)} as {cast})"
        tail = f" {words} {bound}"
        checks.append(
            Check(
                column.name,
                f"{column.name}{tail}",
                f"case when {typed} is not null and {typed}::{cast} {operator} {limit} "
                f"then {quote_literal(column.name + ' ')} || {shown(v, quoted=False)} "
                f"|| {quote_literal(tail)} end",
            )
        )
    return checks


def rule_checks(column: Column, options: ReadOptions | None = None) -> list[Check]:
    """The column's rules, in the order their reasons are written."""
    options = options or ReadOptions()
    v, name = trimmed(column.name), column.name
    checks = []
    if column.required:
        missing = f"{name} is missing"
        checks.append(
            Check(
                name,
                missing,
                f"case when {_missing(column.name)} then {quote_literal(missing)} end",
            )
        )
    typed, type_check = _type_check(column, options, v)
    checks += [type_check] if type_check else []
    if column.type == "json":
        words = f"{name} is not a JSON object"
        checks.append(
            Check(
                name,
                words,
                f"case when {v} is not null and (case when json_valid({v}) "
                f"then json_type({v}) <> 'OBJECT' else true end) then {quote_literal(words)} end",
            )
        )
    checks += _bound_checks(column, typed, v)
    if column.allowed:
        values = ", ".join(quote_literal(a) for a in column.allowed)
        tail = " is not one of " + ", ".join(column.allowed)
        checks.append(
            Check(
                name,
                f"{name}{tail}",
                f"case when {_refuses(column.name, lambda x: f'{x} in ({values})')} "
                f"then {quote_literal(name + ' ')} || {shown(v)} || {quote_literal(tail)} end",
            )
        )
    if column.pattern:
        tail = " does not match " + column.pattern
        pattern = quote_literal(full_match_pattern(column.pattern))
        checks.append(
            Check(
                name,
                f"{name}{tail}",
                f"case when {_refuses(column.name, lambda x: f'regexp_full_match({x}, {pattern})')} "
                f"then {quote_literal(name + ' ')} || {shown(v)} || {quote_literal(tail)} end",
            )
        )
    return checks


def full_match_pattern(pattern: str) -> str:
    """The pattern without the `^` and `$` that a whole-value match makes redundant (DuckDB's
    regexp_full_match runs about twice as fast without them)."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    body = pattern[:-1]
    escaped = (len(body) - len(body.rstrip("\\"))) % 2 == 1  # `\$` is a dollar sign
    if pattern.endswith("$") and not escaped:
        pattern = body
    return pattern


def feed_checks(feed: Feed) -> list[Check]:
    """Every rule of every column of the feed, in column order."""
    return [check for column in feed.columns for check in rule_checks(column, feed.read)]


def duplicate_key_sql(feed: Feed, alias: str | None = None) -> str:
    """SQL for a row's key as landing.duplicates writes it: `order_id=O1, line_number=1`."""
    prefix = f"{alias}." if alias else ""
    return " || ', ' || ".join(
        f"{quote_literal(k + '=')} || coalesce(cast({prefix}{quote_ident(k)} as varchar), '')"
        for k in feed.key
    )


# --------------------------------------------------------------------------- masking

_KEEP = 2  # characters kept at each end of a masked value


def mask_value(text: str) -> str:
    """A personal value with its letters and digits hidden but the first and last two.

    >>> mask_value("0161 496 0117")
    '01** *** **17'
    """
    if len(text) <= 2 * _KEEP + 1:
        return "".join("*" if ch.isalnum() else ch for ch in text)
    middle = "".join("*" if ch.isalnum() else ch for ch in text[_KEEP:-_KEEP])
    return text[:_KEEP] + middle + text[-_KEEP:]


def mask_reason(reason: str, feed: Feed) -> str:
    """A reason with the values of personal columns (`pii` or `erase_by`) masked:
    `phone '01** *** **17' is not...`.

    Reasons join with '; ' and each starts with its column's name (see `rule_checks` and
    ml/landing/normalised.py); values are quoted (`name 'value' ...`) or, for bounds, bare
    (`name value is below ...`).
    """
    personal = {c.name for c in feed.columns if c.pii or c.erase_by}
    return "; ".join(_mask_one(part, personal) for part in reason.split("; "))


def _mask_one(part: str, personal: set[str]) -> str:
    name, _, rest = part.partition(" ")
    if name not in personal:
        return part
    if rest.startswith("'"):
        end = max(rest.rfind("' is "), rest.rfind("' does "))
        if end > 0:
            return f"{name} '{mask_value(rest[1:end])}{rest[end:]}"
    for words in (" is below ", " is above "):
        value, found, tail = rest.partition(words)
        if found:
            return f"{name} {mask_value(value)}{words}{tail}"
    return part
