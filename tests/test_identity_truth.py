"""The matcher on our generator's CRM records, scored pair by pair against the people behind
them: twins and relatives of one name stay apart.

Integration: it writes the generator's CRM export (5,000 customers, seed 42, as
`make bench-identity` does) and runs `resolve_entities` with default settings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.datasets import crm_records, generate_crm
from ml.identity.matching import resolve_entities
from ml.identity.metrics import pairwise_metrics
from ml.synthetic.context import Context
from ml.synthetic.generator import DEFAULT_END
from ml.synthetic.people import make_people

# one worker builds this module's fixtures once (make test runs two, --dist loadgroup)
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("identity_truth")]

CUSTOMERS, SEED = 5000, 42


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Entities of the CRM records, the people, and each person's set of entities."""
    folder = tmp_path_factory.mktemp("generator")
    generate_crm(folder, CUSTOMERS, SEED)
    truth = pd.read_csv(folder / "crm_truth.csv", dtype=str)
    records = crm_records(folder, set(truth["crm_id"]))
    resolution = resolve_entities(records)
    entity = resolution.entities.set_index("record_id")["entity_id"]
    person = truth.set_index("crm_id")["person_id"].reindex(entity.index)
    people = make_people(Context(customers=CUSTOMERS, seed=SEED, end=DEFAULT_END))
    index = person.str[1:].astype(int) - 1  # P0000001 is person 0
    entities_of = pd.Series(entity.to_numpy()).groupby(index.to_numpy()).agg(set)
    return entity, person, people, entities_of


def merged(entities_of: pd.Series, a: int, b: int) -> bool:
    return bool(entities_of[a] & entities_of[b])


def test_twins_stay_apart(scored) -> None:
    _, _, people, entities_of = scored
    twins = [
        (a, int(b))
        for a, b in enumerate(people.twin_of.tolist())
        if b > a and a in entities_of.index and b in entities_of.index
    ]
    assert len(twins) == 10
    assert [pair for pair in twins if merged(entities_of, *pair)] == []


def test_relatives_of_one_name_stay_apart(scored) -> None:
    """Same first and last name in one household: 68 pairs with different birth dates (a
    parent and child, partners) stay apart; the one pair with the same birth date too has
    nothing but an e-mail and a phone to tell them apart, and is merged."""
    _, _, people, entities_of = scored
    household = pd.DataFrame(
        {
            "household": people.household,
            "first": people.first,
            "last": people.last,
            "birth": people.birth,
            "person": np.arange(people.n),
        }
    )
    pairs = household.merge(household, on=["household", "first", "last"])
    pairs = pairs[(pairs["person_x"] < pairs["person_y"])]
    pairs = pairs[
        pairs["person_x"].isin(entities_of.index) & pairs["person_y"].isin(entities_of.index)
    ]
    pairs = pairs.assign(
        merged=[
            merged(entities_of, a, b)
            for a, b in zip(pairs["person_x"], pairs["person_y"], strict=True)
        ],
        same_birth=pairs["birth_x"] == pairs["birth_y"],
    )
    counts = pairs.groupby("same_birth")["merged"].agg(["size", "sum"])
    assert counts.loc[False].tolist() == [68, 0]
    assert counts.loc[True].tolist() == [1, 1]


def test_pairwise_figures(scored) -> None:
    entity, person, _, _ = scored
    figures = pairwise_metrics(entity, person)
    assert figures["true_pairs"] == 200
    assert (figures["true_positives"], figures["false_positives"]) == (197, 1)
