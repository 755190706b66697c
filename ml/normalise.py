"""Normalisers for the identifiers and attributes customers type in many ways.

Each function takes one raw value and returns its normal form, or raises `InvalidValue`
with a sentence a person can act on. `normalise_unique` applies one to a whole column
by computing each distinct value once, which keeps millions of rows cheap.

One normal form per identifier, used by the loader (validation and normalisation on landing),
by identity matching and by activation alike:

* e-mail: `email_normal_form` (Unicode NFC, trimmed, lower-cased). `normalise_email` is the
  landing check: it validates the syntax first (about 80 microseconds a value), then returns
  the same normal form. Identity reads addresses landing has already checked, and compares an
  unchecked file's addresses in the same normal form without the cost of validating each.
* mailbox: `mailbox_key`, the mailbox an address reaches (Gmail ignores dots, googlemail.com
  is gmail.com, documented `+tags` are dropped; the providers are listed in feeds.yml under
  `mailbox_providers`), and `mailbox_key_sql`, the same in DuckDB SQL. Identity, consent and
  suppression compare addresses by it; exports keep each platform's own normalisation.
* phone: E.164 (`normalise_phone`, validating, with the region for national notations);
  `phone_normal_form` is the same with "not a phone number" as None instead of an error, and a
  value already in E.164 passes as it is.

The formats of crm ids and loyalty ids come from `identifier_patterns` in
`ml/landing/feeds.yml`, the feed contract, and nowhere else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

import phonenumbers
import yaml
from email_validator import EmailNotValidError, validate_email

FEEDS_FILE = Path(__file__).with_name("landing") / "feeds.yml"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class InvalidValue(ValueError):
    """A value that cannot be normalised; the message says why, without naming the column."""


@cache
def identifier_pattern(kind: str) -> re.Pattern[str]:
    """The pattern of an identifier kind (`crm_id`, `loyalty_id`) from the feed contract.

    Read from `identifier_patterns` in ml/landing/feeds.yml (by path: this module sits below
    the landing package, which imports it).
    """
    with open(FEEDS_FILE, encoding="utf-8") as handle:
        patterns = (yaml.safe_load(handle) or {}).get("identifier_patterns") or {}
    if kind not in patterns:
        raise KeyError(
            f"{FEEDS_FILE}: identifier_patterns has no {kind!r}; add its pattern there "
            f"(known: {', '.join(sorted(patterns))})"
        )
    return re.compile(patterns[kind])


def email_normal_form(value: str) -> str | None:
    """The one normal form of an e-mail address: Unicode NFC, trimmed, lower-cased (None when
    empty). No check of the syntax: see `normalise_email` for that.

    >>> email_normal_form("  John.Smith@Example.ORG ")
    'john.smith@example.org'
    """
    text = unicodedata.normalize("NFC", value).strip().lower()
    return text or None


def normalise_email(value: str) -> str:
    """Check an e-mail address's syntax (landing; no DNS lookup), then its normal form.

    >>> normalise_email("  John.Smith@Example.ORG ")
    'john.smith@example.org'
    """
    candidate = value.strip()
    if not candidate:
        raise InvalidValue("is empty")
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(f"is not a valid email address ({exc})") from None
    return email_normal_form(checked.normalized) or ""


def normalise_phone(value: str, region: str | None = None) -> str:
    """Parse a phone number written any common way into E.164.

    `region` (ISO country code) says how to read numbers written without a country code.
    Notations such as `(0)20 7946 0018`, `+44 (0)20 7946 0018` and `020-7946-0018` all give
    `+442079460018` for GB.
    """
    candidate = value.strip()
    if not candidate:
        raise InvalidValue("is empty")
    # "(0)" marks the trunk prefix that is dropped after a country code: "+44 (0)20" or "(0)20".
    candidate = candidate.replace("(0)", "0" if not candidate.startswith("+") else "")
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        number = phonenumbers.parse(candidate, (region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(f"is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        where = f" in {region}" if region and not candidate.startswith("+") else ""
        raise InvalidValue(f"is not a valid phone number{where}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_normal_form(value: str, region: str | None = None) -> str | None:
    """E.164 as `normalise_phone` gives it, or None for what is not a valid phone number.

    A value already written in E.164 (``+`` and 7 to 15 digits) is its own normal form and is
    returned as it is, which keeps a million normalised phones cheap.

    >>> phone_normal_form("020 7946 0018", "GB"), phone_normal_form("n/a", "GB")
    ('+442079460018', None)
    """
    text = value.strip()
    if _E164.match(text):
        return text
    try:
        return normalise_phone(text, region)
    except InvalidValue:
        return None


@dataclass(frozen=True)
class MailboxRule:
    """How one provider's domain reaches its mailboxes (`mailbox_providers` in feeds.yml)."""

    domain: str  # the domain written in the mailbox key (googlemail.com -> gmail.com)
    dots_ignored: bool = False  # j.o.h.n@ reaches john@
    plus_tags: bool = False  # john+shop@ reaches john@


def parse_mailbox_providers(raw: object, where: str = "feeds.yml") -> dict[str, MailboxRule]:
    """The `mailbox_providers` mapping of feeds.yml, checked: domain -> MailboxRule.

    Each entry is `<domain>: {dots_ignored: bool, plus_tags: bool, same_as: <domain>}` (all
    optional); `same_as` names another listed domain whose mailboxes this one reaches, and
    takes that domain's rule. ValueError names the domain and the key.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: mailbox_providers is a mapping of domain -> rule")
    rules: dict[str, MailboxRule] = {}
    aliases: dict[str, str] = {}
    for domain, rule in raw.items():
        name = str(domain).strip().lower()
        if "@" in name or "." not in name or name != str(domain):
            raise ValueError(f"{where}: mailbox_providers: {domain!r} is not a lower-case domain")
        rule = rule or {}
        if not isinstance(rule, dict) or set(rule) - {"dots_ignored", "plus_tags", "same_as"}:
            raise ValueError(
                f"{where}: mailbox_providers: {name}: write the rule as a mapping of "
                "dots_ignored, plus_tags (true or false) or same_as (another listed domain)"
            )
        for key in ("dots_ignored", "plus_tags"):
            if not isinstance(rule.get(key, False), bool):
                raise ValueError(f"{where}: mailbox_providers: {name}: {key} is true or false")
        if "same_as" in rule:
            if set(rule) != {"same_as"}:
                raise ValueError(
                    f"{where}: mailbox_providers: {name}: same_as takes the other domain's "
                    "rule, so it stands alone"
                )
            aliases[name] = str(rule["same_as"])
        else:
            rules[name] = MailboxRule(
                name, rule.get("dots_ignored", False), rule.get("plus_tags", False)
            )
    for name, target in aliases.items():
        if target not in rules:
            raise ValueError(
                f"{where}: mailbox_providers: {name}: same_as {target!r} is not a listed "
                "domain with a rule of its own"
            )
        rules[name] = rules[target]
    return dict(sorted(rules.items()))


@cache
def mailbox_providers() -> dict[str, MailboxRule]:
    """The providers whose addresses reach one mailbox written several ways, from
    `mailbox_providers` in ml/landing/feeds.yml (read by path, as `identifier_pattern` is)."""
    with open(FEEDS_FILE, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    return parse_mailbox_providers(document.get("mailbox_providers"), str(FEEDS_FILE))


def mailbox_key(value: str) -> str | None:
    """The mailbox an address reaches: its normal form (`email_normal_form`) with the
    provider's own rules applied, for the providers listed in feeds.yml: Gmail ignores dots,
    googlemail.com is gmail.com, and `+tags` are dropped where the provider documents them.
    Identity links, consent and suppression compare addresses by this key; exports hash each
    platform's own normal form instead (ml/activation/hashing.py). Any other address is its
    own key, and so is one whose local part would be left empty. None when empty.

    >>> mailbox_key(" Camille.Dumont+shop@GoogleMail.com"), mailbox_key("a.b+c@example.org")
    ('camilledumont@gmail.com', 'a.b+c@example.org')
    """
    email = email_normal_form(value)
    if email is None or "@" not in email:
        return email
    local, _, domain = email.rpartition("@")
    rule = mailbox_providers().get(domain)
    if rule is None:
        return email
    kept = local.split("+", 1)[0] if rule.plus_tags else local
    if rule.dots_ignored:
        kept = kept.replace(".", "")
    return f"{kept}@{rule.domain}" if kept else email


def mailbox_key_sql(email: str) -> str:
    """DuckDB SQL of `mailbox_key` over an expression that already holds an address's normal
    form (a landed `_normalised` column, identity's email values). The same rules, written
    out per domain from the same list: tests/test_normalise.py checks the two agree.
    """
    domain = f"regexp_extract({email}, '@([^@]*)$', 1)"
    local = f"regexp_extract({email}, '^(.*)@[^@]*$', 1)"
    cases = []
    for name, rule in mailbox_providers().items():
        kept = f"split_part({local}, '+', 1)" if rule.plus_tags else local
        if rule.dots_ignored:
            kept = f"replace({kept}, '.', '')"
        cases.append(
            f"when '{name}' then coalesce(nullif({kept}, '') || '@{rule.domain}', {email})"
        )
    if not cases:
        return f"({email})"
    lines = [f"(case {domain}", *(f"    {case}" for case in cases), f"    else {email} end)"]
    return "\n".join(lines)


def listed_provider_sql(email: str) -> str:
    """DuckDB SQL that is true when the address (in its normal form) is at a domain of
    `mailbox_providers`: the addresses whose mailbox key may differ from how they are written."""
    domains = ", ".join(f"'{name}'" for name in mailbox_providers())
    if not domains:
        return "false"
    return f"coalesce(regexp_extract({email}, '@([^@]*)$', 1) in ({domains}), false)"


REFERENCE_KINDS = ("email", "crm_id", "loyalty_id")
_KIND_WORDS = {
    "email": "an email",
    "crm_id": "a crm id (C + 7 digits)",
    "loyalty_id": "a loyalty id (L + 8 digits)",
}
_KIND_NAMES = {"crm_id": "a crm id", "loyalty_id": "a loyalty id"}


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def reference_pattern(kind: str, patterns: Mapping[str, str] | None = None) -> re.Pattern[str]:
    """The pattern of an identifier kind: from `patterns` (a feed's `identifier_patterns`, a
    user's overrides merged) when given, else from feeds.yml (`identifier_pattern`)."""
    if patterns is not None and kind in patterns:
        return _compiled(patterns[kind])
    return identifier_pattern(kind)


def kind_words(kind: str, patterns: Mapping[str, str] | None = None) -> str:
    """'a crm id (C + 7 digits)', or, for a pattern the overrides changed, 'a crm id (^[0-9]{5}$)'."""
    changed = patterns is not None and kind in patterns and kind in _KIND_NAMES
    if changed and patterns[kind] != identifier_pattern(kind).pattern:
        return f"{_KIND_NAMES[kind]} ({patterns[kind]})"
    return _KIND_WORDS[kind]


def classify_reference(
    value: str,
    kinds: tuple[str, ...] = REFERENCE_KINDS,
    patterns: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Tell what a customer reference is and normalise it: (normal form, kind).

    Kinds: `email`, `crm_id`, `loyalty_id`; `kinds` limits the ones accepted. `patterns`: the
    identifier patterns in force (a feed's, with a user's overrides); feeds.yml's by default.
    """
    candidate = value.strip()
    upper = candidate.upper()
    if "@" in candidate and "email" in kinds:
        return normalise_email(candidate), "email"
    if "crm_id" in kinds and reference_pattern("crm_id", patterns).match(upper):
        return upper, "crm_id"
    if "loyalty_id" in kinds and reference_pattern("loyalty_id", patterns).match(upper):
        return upper, "loyalty_id"
    words = [kind_words(k, patterns) for k in kinds]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    raise InvalidValue(f"is not {listed}")


def clean_name(value: str) -> str:
    """A person's name for display: Unicode NFC, single spaces, no surrounding blanks.

    >>> clean_name("  mary   ann ")
    'mary ann'
    """
    return " ".join(unicodedata.normalize("NFC", value).split())


def name_key(value: str) -> str:
    """A name for comparison: accents removed, case folded, only letters and single spaces.

    >>> name_key("  Zoë  O'Brien-Smith ")
    'zoe obrien smith'
    """
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    letters = letters.casefold().replace("'", "").replace("’", "")
    return " ".join(re.sub(r"[^a-z ]+", " ", letters).split())


DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y", "%d %B %Y")


def parse_date(value: str, formats: Iterable[str] = DATE_FORMATS) -> date:
    """Read a calendar date from the first format that fits; day-first, never month-first.

    >>> parse_date("02/03/1984")
    datetime.date(1984, 3, 2)
    """
    candidate = value.strip()
    for fmt in formats:
        try:
            return datetime.strptime(candidate, fmt).date()
        except ValueError:
            continue
    raise InvalidValue("is not a date (expected YYYY-MM-DD)")


def normalise_unique(
    values: Iterable[str | None], function: Callable[[str], object]
) -> tuple[list[object | None], list[str | None]]:
    """Apply `function` to every distinct non-empty value once.

    Returns two lists aligned with `values`: the normal forms (None where empty or invalid)
    and the error messages (None where fine or empty).
    """
    values = list(values)
    results: dict[str, tuple[object | None, str | None]] = {}
    for value in set(values):
        if value is None or not str(value).strip():
            continue
        try:
            results[value] = (function(value), None)
        except InvalidValue as exc:
            results[value] = (None, str(exc))
    normal = [results.get(v, (None, None))[0] for v in values]
    errors = [results.get(v, (None, None))[1] for v in values]
    return normal, errors
