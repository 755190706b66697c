"""Erasure's search rule in SQL (ml/privacy/table_rows.py) against the rule written plainly in
Python: a row names an erased person when a word of its searched columns, lower-cased and
without trailing dots, is one of their identifiers, or an address at a listed provider reaches
their mailbox, or (for an identifier no word can hold whole) the joined text contains it."""

from __future__ import annotations

import random

import duckdb
import pytest

from ml.landing.tombstones import identifier_tokens
from ml.normalise import mailbox_key, mailbox_providers
from ml.privacy.table_rows import MAILBOXES, ODD, SEARCHED, Searched, rows_naming_erased_sql

ERASED = {"R1": "ann@x.com", "R2": "c1000001", "R3": "447700900123", "R4": "ann lee"}
MAILBOX = ("R5", "ann@gmail.com")
PIECES = [
    "ann@x.com", "Ann@X.com.", "joann@x.com", "a.n.n@gmail.com", "Ann@Gmail.com",
    "ann+news@gmail.com", "c1000001", "crm:C1000001", "c10000011", " ", ",", ";", "lee",
    "+44 7700", "447700900123", '{"e":"ann@x.com"}', "ann lee", "ANN LEE", ".", "@", "\t",
]  # fmt: skip
COLUMNS = ("a", "b", "c")


def expected(rows: list[tuple], columns: tuple[str, ...], searched: Searched) -> set[tuple]:
    values = {value: request for request, value in ERASED.items() if value != "ann lee"}
    values[MAILBOX[1]] = MAILBOX[0]  # a mailbox is searched as a word too
    found = set()
    for row_id, row in enumerate(rows):
        texts = [row[COLUMNS.index(c)] for c in columns]
        joined = " ".join(t for t in texts if t is not None).lower()
        for word in identifier_tokens(joined):
            if word in values:
                found.add((row_id, values[word]))
            listed = "@" in word and word.rsplit("@", 1)[1] in mailbox_providers()
            if searched.mailboxes and listed and mailbox_key(word) == MAILBOX[1]:
                found.add((row_id, MAILBOX[0]))
        if searched.odd_values and "ann lee" in joined:
            found.add((row_id, "R4"))
    return found


@pytest.mark.parametrize("seed", range(4))
def test_the_search_finds_exactly_the_rows_the_rule_names(seed: int):
    generator = random.Random(seed)
    rows = [
        tuple(
            None
            if generator.random() < 0.15
            else "".join(generator.choice(PIECES) for _ in range(generator.randint(1, 4)))
            for _ in COLUMNS
        )
        for _ in range(200)
    ]
    with duckdb.connect() as connection:
        connection.execute(
            f"create temp table {SEARCHED} as select * from "
            "(select unnest(?::varchar[]) as request_id, unnest(?::varchar[]) as value)",
            [[*ERASED, MAILBOX[0]], [*ERASED.values(), MAILBOX[1]]],
        )
        connection.execute(
            f"create temp table {MAILBOXES} as select ? as request_id, ? as value", list(MAILBOX)
        )
        connection.execute(
            f"create temp table {ODD} as select 'R4' as request_id, 'ann lee' as value"
        )
        connection.execute("create table people (a varchar, b varchar, c varchar)")
        connection.executemany("insert into people values (?, ?, ?)", rows)
        for searched in (Searched(True, True), Searched(False, False)):
            for columns in (("a",), COLUMNS):
                found = set(
                    connection.execute(
                        rows_naming_erased_sql("people", columns, searched)
                    ).fetchall()
                )
                assert found == expected(rows, columns, searched)
                assert found  # the pieces name someone in every sample
