"""Landing's SQL shortcuts for emails, phones and references agree with ml/normalise.py.

The shortcut may only accept a value, and only with the normal form the Python normaliser
gives it; every value it leaves goes to Python. These tests run both over the generator's own
values and over values chosen to trip a shortcut: each accepted value must match exactly.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from ml.landing.normalised import email_query, phone_query, reference_query
from ml.normalise import InvalidValue, classify_reference, normalise_email, normalise_phone

REGIONS = ["GB", "IE", "FR", "DE", "NL", "ES", "US", "IT", "BR", "JE", "CA", "XX"]


def shortcut(query: str, pairs: list[tuple[str, str | None]]) -> dict:
    with duckdb.connect() as connection:
        connection.execute("create table source (value varchar, region varchar)")
        connection.executemany("insert into source values (?, ?)", pairs)
        rows = connection.execute(query.replace("{source}", "select * from source")).fetchall()
    return {(value, region): (normal, kind) for value, region, normal, kind in rows}


def python_outcome(function, *args):
    try:
        return function(*args)
    except InvalidValue:
        return None


EMAILS = [
    "ann@example.com",
    "  Ann.Lee@Example.COM ",
    "\tann@example.com",
    "ann@@example.com",
    "ann@example",
    "ann@example.c0m",
    "ann@example.123",
    "ann@localhost",
    "ann@mail.test",
    "ann@sub.onion",
    "ann@ab--cd.com",
    "ann@xn--bcher-kva.com",
    "ann..lee@example.com",
    ".ann@example.com",
    "ann.@example.com",
    "ann@-example.com",
    "ann@example-.com",
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "ann@" + "b" * 63 + ".com",
    "ann@" + "b" * 64 + ".com",
    "ann@" + ".".join(["b" * 60] * 4) + ".com",
    "INFO@Example.org",
    "o'neil+tag@example.co.uk",
    "zoë@example.fr",
    "ann@exämple.de",
    "ann@example.com\x0b",
    "\u00a0ann@example.com",
    "Ann <ann@example.com>",
    '"ann"@example.com',
    "ann@[192.0.2.1]",
    "ann@e.x",
    "ann@a.b.c.d.e.f",
]


def test_every_email_the_shortcut_accepts_is_accepted_alike_by_email_validator():
    found = shortcut(email_query("{source}"), [(e, None) for e in EMAILS])
    accepted = {value for (value, _), (normal, _) in found.items() if normal}
    for value in EMAILS:
        normal = found[(value, None)][0]
        if normal is not None:
            assert normal == python_outcome(normalise_email, value), value
    assert accepted == {
        "ann@example.com",
        "  Ann.Lee@Example.COM ",
        "\tann@example.com",
        "a" * 64 + "@example.com",
        "ann@" + "b" * 63 + ".com",
        "ann@" + ".".join(["b" * 60] * 4) + ".com",
        "ann@example.c0m",
        "INFO@Example.org",
        "o'neil+tag@example.co.uk",
        "ann@e.x",
        "ann@a.b.c.d.e.f",
    }


PHONES = [
    "+44 20 7946 0018",
    "(0)20 7946 0018",
    "+44 (0)20 7946 0018",
    "0044 20 7946 0018",
    "020 7946 0018",
    "020-7946-0018",
    "020.7946.0018",
    " 020 7946 0018 ",
    "+44 020 7946 0018",
    "07700 900123",
    "+44 7700 900123",
    "+44 1800 201234",
    "+1 212 736 4521",
    "(212) 736-4521",
    "212.736.4521",
    "1-212-736-4521",
    "011 44 20 7946 0018",
    "+33 1 23 45 67 89",
    "01 23 45 67 89",
    "00 33 1 23 45 67 89",
    "+49 30 12345678",
    "030/12345678",
    "030 12345678",
    "+353 1 234 5678",
    "01 234 5678",
    "+31 20 123 4567",
    "020 123 4567",
    "+34 912 34 56 78",
    "912 34 56 78",
    "+39 06 6982 0000",
    "06 6982 0000",
    "+55 11 91234 5678",
    "(11) 91234-5678",
    "+1 416 555 0199",
    "44 20 7946 0018",
    "+0 123",
    "++44 20 7946 0018",
    "+44 20 7946 0018 ext. 12",
    "020 7946 0018#",
    "0",
    "phone",
    "+",
]


def test_every_phone_the_shortcut_accepts_is_accepted_alike_by_phonenumbers():
    pairs = [(p, r) for p in PHONES for r in [*REGIONS, "gb ", None]]
    found = shortcut(phone_query("{source}", REGIONS), pairs)
    accepted = 0
    for value, region in pairs:
        normal = found[(value, region)][0]
        if normal is not None:
            accepted += 1
            assert normal == python_outcome(normalise_phone, value, (region or "").strip()), (
                value,
                region,
            )
    assert accepted == 176


def test_the_phone_shortcut_takes_the_generators_notations():
    from ml.synthetic import phones

    rng = np.random.default_rng(7)
    pairs = []
    for plan in phones.PLANS:
        for notation, _ in phones.NOTATIONS[plan.country]:
            digits = "".join(str(d) for d in rng.integers(0, 10, plan.nsn_len - len(plan.prefix)))
            pairs.append((phones.render(plan, plan.prefix + digits, notation), plan.country))
    found = shortcut(phone_query("{source}", sorted({r for _, r in pairs})), pairs)
    for value, region in pairs:
        normal = found[(value, region)][0]
        expected = python_outcome(normalise_phone, value, region)
        if normal is not None:
            assert normal == expected, (value, region)
    taken = sum(found[pair][0] is not None for pair in pairs)
    valid = sum(python_outcome(normalise_phone, v, r) is not None for v, r in pairs)
    assert taken >= 0.85 * valid


@pytest.mark.parametrize("kinds", [("email", "crm_id", "loyalty_id"), ("email", "crm_id")])
def test_every_reference_the_shortcut_recognises_is_classified_alike(kinds):
    values = [
        "C0000001",
        "c0000001",
        " C0000001 ",
        "C00000011",
        "L12345678",
        "l12345678",
        "ann@example.com",
        " Ann@Example.COM",
        "ann@@example.com",
        "nobody",
        "Cé000001",
        "\u00a0C0000001",
        "C0000001@example.com",
    ]
    found = shortcut(reference_query("{source}", kinds), [(v, None) for v in values])
    recognised = {}
    for value in values:
        normal, kind = found[(value, None)]
        if normal is not None:
            assert (normal, kind) == python_outcome(classify_reference, value, kinds), value
            recognised[value] = kind
    assert recognised == {
        "C0000001": "crm_id",
        "c0000001": "crm_id",
        " C0000001 ": "crm_id",
        "ann@example.com": "email",
        " Ann@Example.COM": "email",
        "C0000001@example.com": "email",
        **({"L12345678": "loyalty_id", "l12345678": "loyalty_id"} if "loyalty_id" in kinds else {}),
    }
