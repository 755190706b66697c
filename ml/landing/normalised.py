"""The normalised columns of email, phone and reference formats, once per distinct value.

ml/normalise.py holds the one normaliser of each identifier (email_validator, phonenumbers,
the identifier patterns of feeds.yml). Landing applies it to every distinct value of a batch,
not every row, and first lets DuckDB recognise, in one vectorised pass, the values whose
outcome is certain without it:

* an email written as plain ASCII `local@domain.tld` that email_validator accepts as it is
  (dot-atom local part, hostname labels, a top-level domain ending in a letter, not a special
  use domain): its normal form is the address lower-cased;
* a phone in the digits-and-separators notations people write (`+44 20 7946 0018`,
  `(0)20 7946 0018`, `0049 30 1234567`, `(212) 736-4521`), whose national number the
  region's own phonenumbers metadata (its patterns, lengths and prefixes) declares valid:
  its normal form is +<country code><national number>;
* a reference that is one of the above, a crm id or a loyalty id.

The fast path only ever accepts a value, with the normal form the Python normaliser gives it
(tests/test_landing_normalised.py checks them against each other); every value it does not
accept, valid or not, goes to ml/normalise.py, which decides and words the reason. So the
Python normaliser still rules on every outcome, and runs only on the unusual values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import duckdb
import pyarrow as pa
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from ml.normalise import (
    REFERENCE_KINDS,
    classify_reference,
    normalise_email,
    normalise_phone,
    normalise_unique,
    reference_pattern,
)
from ml.sql import quote_ident, quote_literal

from .checks import shown
from .contracts import Column, Feed

# -------------------------------------------------------------------------- email fast path

_ATEXT = r"a-zA-Z0-9_!#$%&'*+/=?^`{|}~-"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_TOP_LABEL = r"(?:[a-zA-Z]|[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z])"
PLAIN_EMAIL = rf"[{_ATEXT}]{{1,64}}(?:\.[{_ATEXT}]+)*@(?:{_LABEL}\.)+{_TOP_LABEL}"
# email_validator refuses these domains and their subdomains (read from the library itself)
SPECIAL_USE_DOMAIN = r"@(?:[^@]*\.)?(?:" + "|".join(map(re.escape, SPECIAL_USE_DOMAIN_NAMES)) + ")$"
ASCII_TEXT = "[ -~\t]*"  # printable ASCII and tabs: Python's strip() and SQL's trim agree on it


def plain_email_sql(text: str) -> str:
    """SQL over a trimmed ASCII text: its normal form when email_validator accepts it as
    written, else NULL."""
    return (
        f"(case when regexp_full_match({text}, {quote_literal(PLAIN_EMAIL)}) "
        f"and length({text}) <= 254 and length({text}) - strpos({text}, '@') <= 253 "
        f"and not regexp_matches({text}, '@[^@]*--') "
        f"and not regexp_matches(lower({text}), {quote_literal(SPECIAL_USE_DOMAIN)}) "
        f"then lower({text}) end)"
    )


def _text_columns(source: str) -> str:
    """`source` (value, region) with `text`, the value trimmed, and `plain`, whether it is
    ASCII (where SQL's trim and Python's strip() agree)."""
    return (
        f"select value, region, trim(value, ' \t') as text, "
        f"regexp_full_match(value, {quote_literal(ASCII_TEXT)}) as plain from ({source})"
    )


def email_query(source: str) -> str:
    """value, region, normal, kind for the emails of `source` the shortcut accepts."""
    return (
        f"select value, region, case when plain then {plain_email_sql('text')} end as normal, "
        f"null::varchar as kind from ({_text_columns(source)})"
    )


def reference_query(
    source: str, kinds: tuple[str, ...], patterns: Mapping[str, str] | None = None
) -> str:
    """value, region, normal, kind for the references of `source` the shortcut recognises:
    an email (as `email_query`), or a crm or loyalty id matching its `identifier_patterns`
    (`patterns`: the feed's, a user's overrides merged; feeds.yml's by default)."""
    whens = []
    if "email" in kinds:
        whens.append(("contains(text, '@')", "email", "'email'"))
    for kind in ("crm_id", "loyalty_id"):
        if kind in kinds:
            pattern = quote_literal("^(?:" + reference_pattern(kind, patterns).pattern + ")")
            whens.append((f"regexp_matches(upper(text), {pattern})", "upper(text)", f"'{kind}'"))
    normal = " ".join(f"when {condition} then {value}" for condition, value, _ in whens)
    kind = " ".join(f"when {condition} then {name}" for condition, _, name in whens)
    return (
        "select value, region, normal, case when normal is not null then kind end as kind "
        f"from (select value, region, case when plain then (case {normal} end) end as normal, "
        f"case when plain then (case {kind} end) end as kind from ("
        f"select *, {plain_email_sql('text')} as email from ({_text_columns(source)})))"
        if whens
        else f"select value, region, null::varchar as normal, null::varchar as kind from ({source})"
    )


# -------------------------------------------------------------------------- phone fast path

PHONE_TEXT = r"\+?[0-9 ().\-/]*[0-9][0-9 ().\-/]*"
PHONE_VALUE = "[ \t]*" + PHONE_TEXT + "[ \t]*"  # with the blanks strip() would remove
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def _desc_sql(desc) -> str | None:
    """SQL over `nsn`: it matches one phonenumbers description (lengths and pattern)."""
    if desc is None or not desc.national_number_pattern:
        return None
    pattern = f"regexp_full_match(nsn, {quote_literal(desc.national_number_pattern)})"
    lengths = [n for n in desc.possible_length if n > 0]
    if desc.possible_length and not lengths:
        return None
    if lengths:
        return f"(length(nsn) in ({', '.join(map(str, lengths))}) and {pattern})"
    return pattern


@cache
def _valid_number_sql(country_code: int) -> str | None:
    """SQL over `nsn`: phonenumbers calls +<country_code><nsn> valid, decided by the country
    code's main region; None when that region's metadata does not allow the shortcut."""
    metadata = _metadata(COUNTRY_CODE_TO_REGION_CODE.get(country_code, ("",))[0])
    if metadata is None or metadata.leading_digits is not None:
        return None
    general = _desc_sql(metadata.general_desc)
    types = [s for s in (_desc_sql(getattr(metadata, t)) for t in _TYPE_DESCS) if s]
    if general is None or not types:
        return None
    return f"({general} and ({' or '.join(types)}))"


def _metadata(region: str):
    return PhoneMetadata.metadata_for_region(region) if re.fullmatch("[A-Z]{2}", region) else None


def _prefix_for_parsing(metadata) -> str | None:
    """The national prefix pattern phonenumbers strips, anchored, when it is plain enough for
    the shortcut (no capture groups, no transform rule); '' when there is none; else None."""
    pattern = metadata.national_prefix_for_parsing
    if not pattern:
        return ""
    if metadata.national_prefix_transform_rule or re.compile(pattern).groups:
        return None
    return "^(?:" + pattern + ")"


def _phone_rules(regions: list[str]) -> tuple[list[tuple], list[tuple]]:
    """The country codes (code, national prefix, validity SQL) the shortcut reads after + or
    00, and the regions (region, code, national prefix, international prefix) whose national
    notation it reads: those of `regions` whose metadata allows it."""
    codes, nationals = {}, []
    for region in sorted(set(regions)):
        metadata = _metadata(region)
        if metadata is None:
            continue
        code = metadata.country_code
        main = COUNTRY_CODE_TO_REGION_CODE[code][0]
        prefix = _prefix_for_parsing(_metadata(main))
        valid = _valid_number_sql(code)
        if prefix is None or valid is None:
            continue
        codes[code] = (str(code), prefix, valid)
        if main == region and metadata.international_prefix:
            nationals.append(
                (region, str(code), prefix, "^(?:" + metadata.international_prefix + ")")
            )
    return sorted(codes.values()), nationals


def phone_query(source: str, regions: list[str]) -> str:
    """value, region, normal, kind for the phones of `source` (with their row's region) that
    phonenumbers accepts, for the plain notations and the regions the shortcut covers.

    As normalise_phone: "(0)" is the trunk prefix, dropped after a country code, and 00 means
    +. Digits after + (or 00) start with a country code; digits in national notation lose the
    region's national prefix. A number that could be read another way (national digits that
    start with an international prefix or the country code, a national number that starts
    with 0 or with a national prefix after the country code) is left to Python.
    """
    codes, nationals = _phone_rules(regions)
    nothing = "when null then null"
    after_plus = " ".join(f"when starts_with(digits, '{c}') then '{c}'" for c, _, _ in codes)
    prefix_guard = " ".join(
        f"when '{c}' then not regexp_matches(nsn, {quote_literal(p)})"
        if p
        else f"when '{c}' then true"
        for c, p, _ in codes
    )
    valid = " ".join(f"when '{c}' then {v}" for c, _, v in codes)
    national_code = " ".join(f"when '{r}' then '{c}'" for r, c, _, _ in nationals)
    national_nsn = " ".join(
        f"when '{r}' then regexp_replace(digits, {quote_literal(p)}, '')"
        if p
        else f"when '{r}' then digits"
        for r, _, p, _ in nationals
    )
    national_guard = " ".join(
        f"when '{r}' then not regexp_matches(digits, {quote_literal(i)})"
        for r, _, _, i in nationals
    )
    return f"""
        select value, region,
            case when shaped and code is not null and not starts_with(nsn, '0')
                and (case when international then (case code {prefix_guard or nothing} end)
                    else not starts_with(digits, code)
                        and (case area {national_guard or nothing} end) end)
                and (case code {valid or nothing} end)
            then '+' || code || nsn end as normal,
            null::varchar as kind
        from (
            select *,
                case when international then substr(digits, length(code) + 1)
                    else (case area {national_nsn or nothing} end) end as nsn
            from (
                select *,
                    case when international then (case {after_plus or nothing} end)
                        else (case area {national_code or nothing} end) end as code
                from (
                    select value, region, shaped, upper(trim(region, ' \t')) as area,
                        starts_with(text, '+') or starts_with(unbracketed, '00') as international,
                        case when not starts_with(text, '+') and starts_with(unbracketed, '00')
                            then substr(regexp_replace(unbracketed, '[^0-9]', '', 'g'), 3)
                            else regexp_replace(unbracketed, '[^0-9]', '', 'g') end as digits
                    from (
                        select value, region, text,
                            regexp_full_match(value, {quote_literal(PHONE_VALUE)}) as shaped,
                            case when starts_with(text, '+') then replace(text, '(0)', '')
                                else replace(text, '(0)', '0') end as unbracketed
                        from (select value, region, trim(value, ' \t') as text from ({source}))
                    )
                )
            )
        )
    """


# -------------------------------------------------------------------------- per batch


@dataclass(frozen=True)
class NormalisedColumn:
    """A format column's table of distinct values in the batch, how to join it, and SQL (over
    the joined row) for its derived columns, its reason and the reason's kind."""

    column: Column
    join: str
    selected: str  # the lookup's columns, as the joined row names them
    derived: dict[str, str]
    reason: str
    kind: str


def normalise_columns(
    connection: duckdb.DuckDBPyConnection, feed: Feed, rows: str
) -> list[NormalisedColumn]:
    """Build, for each email, phone and reference column of the feed, the table of its distinct
    values (from the table `rows`) with their normal form or the reason they have none."""
    columns = [c for c in feed.columns if c.format]
    patterns = feed.identifier_patterns or None
    return [_normalise_column(connection, rows, c, i, patterns) for i, c in enumerate(columns)]


def _normalise_column(
    connection: duckdb.DuckDBPyConnection,
    rows: str,
    column: Column,
    index: int,
    patterns: Mapping[str, str] | None = None,
) -> NormalisedColumn:
    table, alias = f"landing_values_{index}", f"values_{index}"
    value = quote_ident(column.name)
    region = quote_ident(column.region_from) if column.format == "phone" else "null::varchar"
    source = (
        f"select distinct {value} as value, {region} as region from {rows} "
        f"where {value} is not null"
    )
    connection.execute(
        f"create or replace temp table {table} as select value, region, normal, kind, "
        f"null::varchar as error, null::varchar as error_kind "
        f"from ({_fast_query(connection, rows, column, source, patterns)})"
    )
    _normalise_the_rest(connection, table, column, patterns)
    join = f"left join {table} as {alias} on {alias}.value = {rows}.{value}"
    if column.format == "phone":
        join += f" and {alias}.region is not distinct from {rows}.{region}"
    normal, kind, error = f"_normal_{index}", f"_kind_{index}", f"_error_{index}"
    selected = (
        f"{alias}.normal as {normal}, {alias}.kind as {kind}, {alias}.error as {error}, "
        f"{alias}.error_kind as {alias}_error_kind"
    )
    derived = {column.derived[0]: normal}
    if column.format == "reference":
        derived[column.derived[1]] = kind
    label = quote_literal(column.name + " ")
    return NormalisedColumn(
        column,
        join,
        selected,
        derived,
        f"case when {error} is not null then {label} || {shown(value)} || ' ' || {error} end",
        f"case when {error} is not null then {label} || {alias}_error_kind end",
    )


def _fast_query(
    connection: duckdb.DuckDBPyConnection,
    rows: str,
    column: Column,
    source: str,
    patterns: Mapping[str, str] | None = None,
) -> str:
    """The query of the column's shortcut over `source` (distinct value, region)."""
    if column.format == "email":
        return email_query(source)
    if column.format == "phone":
        region = quote_ident(column.region_from)
        regions = connection.execute(
            f"select distinct upper(trim({region}, ' \t')) from {rows} where {region} is not null"
        ).fetchall()
        return phone_query(source, [r for (r,) in regions])
    return reference_query(source, column.kinds or REFERENCE_KINDS, patterns)


def error_kind(error: str) -> str:
    """The reason without the one value's details: `is not a valid email address` for `is not
    a valid email address (The part after the @-sign ...)`; worded kinds such as `(C + 7
    digits)` stay."""
    return re.sub(r" \([A-Z][a-z][^()]*\)$", "", error)


def _python_normaliser(column: Column, patterns: Mapping[str, str] | None = None):
    if column.format == "email":
        return lambda pair: (normalise_email(pair[0]), None)
    if column.format == "phone":
        return lambda pair: (normalise_phone(pair[0], (pair[1] or "").strip()), None)
    kinds = column.kinds or REFERENCE_KINDS
    return lambda pair: classify_reference(pair[0], kinds, patterns)


def _normalise_the_rest(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    column: Column,
    patterns: Mapping[str, str] | None = None,
) -> None:
    """The values the fast path did not accept, through ml/normalise.py once each."""
    pending = connection.execute(
        f"select value, region from {table} where normal is null"
    ).fetchall()
    if not pending:
        return
    pairs = [(v, r) if str(v).strip() else None for v, r in pending]
    outcomes, errors = normalise_unique(pairs, _python_normaliser(column, patterns))
    results = pa.table(
        {
            "value": [v for v, _ in pending],
            "region": [r for _, r in pending],
            "normal": [o[0] if o else None for o in outcomes],
            "kind": [o[1] if o else None for o in outcomes],
            "error": errors,
            "error_kind": [error_kind(e) if e else None for e in errors],
        },
        schema=pa.schema(
            [(n, pa.string()) for n in ("value", "region", "normal", "kind", "error", "error_kind")]
        ),
    )
    connection.execute(f"delete from {table} where normal is null")
    connection.register("landing_python_values", results)
    try:
        connection.execute(f"insert into {table} select * from landing_python_values")
    finally:
        connection.unregister("landing_python_values")
