"""The matcher and the pipeline's matcher step on degenerate inputs: nothing crashes, and the
answer is the obvious one."""

from __future__ import annotations

import pandas as pd
import pytest
from test_matching import make_frame

from ml.identity.matching import resolve_entities, score_pairs
from ml.identity.pipeline import match_links

pytestmark = pytest.mark.unit

COLUMNS = ["record_id", "first_name", "last_name", "email", "date_of_birth", "postcode"]


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def check_empty_links(links: pd.DataFrame) -> None:
    assert links.empty
    assert {"record_id_l", "record_id_r", "is_match", "match_weight"} <= set(links.columns)
    assert links["is_match"].dtype == bool


def test_no_records() -> None:
    resolution = resolve_entities(frame([]))
    assert resolution.entities.empty and list(resolution.entities.columns) == [
        "record_id",
        "entity_id",
    ]
    check_empty_links(resolution.links)
    assert resolution.report.records == 0 and resolution.report.clusters == 0


def test_one_record() -> None:
    resolution = resolve_entities(frame([("A", "Ann", "Lee", "ann@x.org", "1990-01-02", "LS6")]))
    assert resolution.entities.to_dict("records") == [{"record_id": "A", "entity_id": "A"}]
    check_empty_links(resolution.links)


def test_no_candidate_pairs_reach_the_graph_as_no_edges() -> None:
    people = frame(
        [
            ("A", "Ann", "Lee", "ann@x.org", "1990-01-02", "LS6 1AA"),
            ("B", "Bob", "Kay", "bob@y.org", "1971-05-06", "YO1 7HH"),
            ("C", "Cy", "Orr", "cy@z.org", "1955-11-12", "BA1 5QT"),
        ]
    )
    edges, resolution = match_links(people)
    assert resolution.report.candidate_pairs == 0
    check_empty_links(resolution.links)
    assert edges.empty and list(edges.columns) == [
        "id_type_l",
        "id_value_l",
        "id_type_r",
        "id_value_r",
        "rule",
        "score",
    ]
    assert resolution.entities["entity_id"].tolist() == ["A", "B", "C"]
    assert score_pairs(people).empty


def test_all_records_identical_are_one_entity() -> None:
    same = ("Ann", "Lee", "ann@x.org", "1990-01-02", "LS6 1AA")
    resolution = resolve_entities(frame([(f"R{i:02d}", *same) for i in range(30)]))
    assert set(resolution.entities["entity_id"]) == {"R00"}
    assert resolution.report.clusters == 1 and resolution.report.largest_cluster == 30


def test_an_empty_column_is_left_out_and_changes_nothing() -> None:
    people = make_frame()  # the matcher tests' 414 records, 40 people twice
    with_empty = resolve_entities(people.assign(phone=None))
    without = resolve_entities(people.drop(columns="phone"))
    assert "phone" not in with_empty.report.comparisons
    pd.testing.assert_frame_equal(with_empty.entities, without.entities)
    assert with_empty.report.links_accepted == without.report.links_accepted > 30
