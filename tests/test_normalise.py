"""Normalisers: exact expected values for the notations customers really type."""

import re
from datetime import date

import pytest

from ml.normalise import (
    InvalidValue,
    MailboxRule,
    classify_reference,
    clean_name,
    listed_provider_sql,
    mailbox_key,
    mailbox_key_sql,
    mailbox_providers,
    name_key,
    normalise_email,
    normalise_phone,
    normalise_unique,
    parse_date,
    parse_mailbox_providers,
)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(0)20 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", "GB", "+442079460018"),
        ("020-7946-0018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", "GB", "+442079460018"),
        ("0044 20 7946 0018", "GB", "+442079460018"),
        ("07911 123456", "GB", "+447911123456"),
        ("(212) 555-0123", "US", "+12125550123"),
        ("+1 201 555 0123", "GB", "+12015550123"),
        ("030 12345678", "DE", "+493012345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("020 123 4567", "NL", "+31201234567"),
        ("612 345 678", "ES", "+34612345678"),
        ("087 123 4567", "IE", "+353871234567"),
    ],
)
def test_phone_to_e164(raw, region, e164):
    assert normalise_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "region", "message"),
    [
        ("07700 900123", "GB", "is not a valid phone number in GB"),
        ("12", "GB", "is not a valid phone number in GB"),
        (
            "call me",
            "GB",
            "is not a phone number (The string supplied did not seem to be a phone number.)",
        ),
        ("   ", "GB", "is empty"),
    ],
)
def test_phone_rejects(raw, region, message):
    with pytest.raises(InvalidValue) as error:
        normalise_phone(raw, region)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  John.Smith@Example.ORG ", "john.smith@example.org"),
        ("MARY@GMAIL.COM", "mary@gmail.com"),
        ("o'neil+shop@web.de", "o'neil+shop@web.de"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw, normal):
    assert normalise_email(raw) == normal


@pytest.mark.parametrize(
    "raw", ["john@@example.org", "john smith@example.org", "noemail@shop.invalid", "plainaddress"]
)
def test_email_rejects_bad_syntax(raw):
    with pytest.raises(InvalidValue, match="is not a valid email address"):
        normalise_email(raw)


def test_references_are_classified():
    assert classify_reference(" Ann@Mail.COM ") == ("ann@mail.com", "email")
    assert classify_reference("c0012345") == ("C0012345", "crm_id")
    assert classify_reference("L12345678") == ("L12345678", "loyalty_id")
    with pytest.raises(InvalidValue, match="is not an email, a crm id"):
        classify_reference("X99")


def test_names():
    assert clean_name("  mary   ann ") == "mary ann"
    assert clean_name("Zoe\u0308") == "Zoë"  # combining diaeresis composed
    assert name_key("  Zoë  O'Brien-Smith ") == "zoe obrien smith"
    assert name_key("JOSÉ") == "jose"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1984-03-02", date(1984, 3, 2)),
        ("02/03/1984", date(1984, 3, 2)),
        ("02.03.1984", date(1984, 3, 2)),
        ("19840302", date(1984, 3, 2)),
        ("2 Mar 1984", date(1984, 3, 2)),
    ],
)
def test_dates_are_day_first(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["1984-13-45", "31/02/1990", "yesterday"])
def test_impossible_dates_are_rejected(raw):
    with pytest.raises(InvalidValue, match="is not a date"):
        parse_date(raw)


def test_normalise_unique_aligns_results_and_errors():
    normal, errors = normalise_unique(["A@B.CO", None, "", "bad", "A@B.CO"], normalise_email)
    assert normal == ["a@b.co", None, None, None, "a@b.co"]
    assert errors[:3] == [None, None, None]
    assert errors[3].startswith("is not a valid email address")
    assert errors[4] is None


# --- mailboxes: addresses that reach one mailbox are one identifier for linking and consent


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("camille.dumont@gmail.com", "camilledumont@gmail.com"),  # Gmail ignores dots
        (" Camille.Dumont+Shop@GoogleMail.com ", "camilledumont@gmail.com"),  # and +tags
        ("c.a.m.i.l.l.e.dumont@googlemail.com", "camilledumont@gmail.com"),
        ("ann.lee+news+2@outlook.com", "ann.lee@outlook.com"),  # +tag only: dots count
        ("ann.lee+x@hotmail.co.uk", "ann.lee@hotmail.co.uk"),
        ("ann.lee+x@yahoo.com", "ann.lee+x@yahoo.com"),  # a provider not listed: as written
        ("a.b+c@example.org", "a.b+c@example.org"),
        ("+only@gmail.com", "+only@gmail.com"),  # nothing left before the +: as written
        ("...@gmail.com", "...@gmail.com"),
        ("x@y@gmail.com", "x@y@gmail.com"),
        ("not-an-address", "not-an-address"),
        ("   ", None),
    ],
)
def test_mailbox_key_applies_each_providers_documented_rules(raw, key):
    assert mailbox_key(raw) == key


def test_mailbox_key_in_sql_agrees_with_python():
    """dbt's macro and the loader's tombstone check run `mailbox_key_sql`: the same answers."""
    import duckdb

    addresses = [
        "camille.dumont@gmail.com",
        "camille.dumont+shop@googlemail.com",
        "+only@gmail.com",
        ".+x@gmail.com",
        "ann.lee+1+2@outlook.com",
        "j.o.h.n@hotmail.co.uk",
        "a.b+c@example.org",
        "x@y@gmail.com",
        "no-at-sign",
        "zoë.o'brien+tag@proton.me",
    ]
    with duckdb.connect() as connection:
        rows = connection.execute(
            f"select value, {mailbox_key_sql('value')}, {listed_provider_sql('value')} "
            "from unnest(?::varchar[]) as t(value)",
            [addresses],
        ).fetchall()
        (empty,) = connection.execute(f"select {mailbox_key_sql('null::varchar')}").fetchone()
    assert {value: key for value, key, _ in rows} == {a: mailbox_key(a) for a in addresses}
    listed = {value for value, _, is_listed in rows if is_listed}
    assert listed == {a for a in addresses if a.rpartition("@")[2] in mailbox_providers()}
    assert empty is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"Gmail.com": {}}, "'Gmail.com' is not a lower-case domain"),
        ({"gmail.com": {"dots": True}}, "gmail.com: write the rule as a mapping"),
        ({"gmail.com": {"plus_tags": "yes"}}, "gmail.com: plus_tags is true or false"),
        ({"googlemail.com": {"same_as": "gmail.com"}}, "same_as 'gmail.com' is not a listed"),
        (
            {"gmail.com": {}, "googlemail.com": {"same_as": "gmail.com", "plus_tags": True}},
            "googlemail.com: same_as takes the other domain's rule, so it stands alone",
        ),
        (["gmail.com"], "mailbox_providers is a mapping of domain -> rule"),
    ],
)
def test_a_wrong_mailbox_provider_is_refused_naming_the_domain(raw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_mailbox_providers(raw, "feeds.yml")


def test_googlemail_takes_gmails_rule():
    rules = parse_mailbox_providers(
        {
            "gmail.com": {"dots_ignored": True, "plus_tags": True},
            "googlemail.com": {"same_as": "gmail.com"},
        }
    )
    assert rules["googlemail.com"] == MailboxRule("gmail.com", True, True)
