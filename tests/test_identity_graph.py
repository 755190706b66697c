"""The deterministic identity graph: linking, merge protection, reports, determinism."""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from identity_builders import crm, observations, visit

from ml.identity.config import ConfigError, IdentityConfig, load_config
from ml.identity.graph import IdentityGraph, InputError, resolve_graph

LINK_COLUMNS = ["id_type_l", "id_value_l", "id_type_r", "id_value_r", "rule", "score"]


def cluster_of(graph: IdentityGraph, id_type: str, id_value: str) -> str | None:
    nodes = graph.nodes
    row = nodes[(nodes["id_type"] == id_type) & (nodes["id_value"] == id_value)]
    assert len(row) == 1, f"{id_type}:{id_value} is not a node"
    value = row["cluster_id"].iloc[0]
    return None if pd.isna(value) else value


def record_cluster(graph: IdentityGraph, record_key: str) -> str | None:
    value = graph.records.set_index("record_key").loc[record_key, "cluster_id"]
    return None if pd.isna(value) else value


def test_crm_records_sharing_an_email_merge() -> None:
    graph = resolve_graph(
        observations(
            crm("C1000001", "2024-01-01", email="ann@mail.com", phone="+447700900001"),
            crm("C1000002", "2024-03-01", email="ann@mail.com"),
            crm("C1000003", "2024-02-01", phone="+447700900002"),
        )
    )
    assert cluster_of(graph, "crm_id", "C1000002") == "crm_id:C1000001"
    assert cluster_of(graph, "email", "ann@mail.com") == "crm_id:C1000001"
    assert cluster_of(graph, "crm_id", "C1000003") == "crm_id:C1000003"
    assert graph.records["cluster_id"].tolist() == [
        "crm_id:C1000001",
        "crm_id:C1000001",
        "crm_id:C1000003",
    ]
    evidence = graph.evidence[["id_value_l", "id_value_r", "rule", "record_key"]]
    assert evidence.values.tolist() == [
        ["C1000001", "ann@mail.com", "same_record:crm", "crm:C1000001"],
        ["C1000001", "+447700900001", "same_record:crm", "crm:C1000001"],
        ["C1000003", "+447700900002", "same_record:crm", "crm:C1000003"],
        ["C1000002", "ann@mail.com", "same_record:crm", "crm:C1000002"],
    ]
    assert graph.evidence["step"].tolist() == [0, 1, 2, 3]
    assert graph.evidence["score"].isna().all()
    assert graph.stats["clusters"] == 2
    assert graph.stats["customer_clusters"] == 2


def family() -> pd.DataFrame:
    members = [(f"ck_{i}", f"U{i}", f"2024-01-0{i}") for i in range(1, 5)]
    return observations(
        *(visit(f"{at} 08:00", anonymous_id=ck, device_id="dv_family") for ck, _, at in members),
        *(
            visit(f"{at} 09:00", anonymous_id=ck, user_id=u, device_id="dv_family")
            for ck, u, at in members
        ),
    )


def test_shared_family_device_does_not_merge_four_people() -> None:
    graph = resolve_graph(family())
    users = [cluster_of(graph, "user_id", f"U{i}") for i in range(1, 5)]
    assert users == [f"anonymous_id:ck_{i}" for i in range(1, 5)]
    assert graph.stats["customer_clusters"] == 4
    assert cluster_of(graph, "device_id", "dv_family") is None
    device = graph.nodes[graph.nodes["id_value"] == "dv_family"].iloc[0]
    assert (device["status"], bool(device["is_customer"])) == ("shared", False)
    assert graph.shared.to_dict("records") == [
        {
            "id_type": "device_id",
            "id_value": "dv_family",
            "counted_type": "user_id",
            "distinct_values": 4,
            "limit": 1,
            "records": 8,
        },
        {
            "id_type": "device_id",
            "id_value": "dv_family",
            "counted_type": "anonymous_id",
            "distinct_values": 4,
            "limit": 1,
            "records": 8,
        },
    ]
    # each member's anonymous visits on the family device stay with that member
    assert record_cluster(graph, "visit:ck_3||dv_family") == "anonymous_id:ck_3"
    assert graph.refused.empty


def test_anonymous_browsing_joins_the_person_after_login_back_to_the_first_event() -> None:
    graph = resolve_graph(
        observations(
            visit("2024-01-01 09:00", anonymous_id="ck_a", device_id="dv_a"),
            visit("2024-01-05 10:00", anonymous_id="ck_a", user_id="U7", device_id="dv_a"),
            ("order:O1", "orders", "2024-01-05 10:05", {"crm_id": "C1000007", "user_id": "U7"}),
            crm("C1000007", "2023-06-01", email="bo@mail.com"),
        )
    )
    anonymous = record_cluster(graph, "visit:ck_a||dv_a")
    assert anonymous == record_cluster(graph, "visit:ck_a|U7|dv_a") == "crm_id:C1000007"
    assert cluster_of(graph, "anonymous_id", "ck_a") == "crm_id:C1000007"
    first = graph.nodes.set_index("id_value").loc["ck_a", "first_seen_at"]
    assert first == pd.Timestamp("2024-01-01 09:00", tz="UTC")
    assert graph.nodes["is_customer"].all()


def test_order_enriched_by_its_purchase_event_links_as_clickstream_evidence() -> None:
    frame = pd.concat(
        [
            observations(("order:O1", "orders", "2024-01-05 10:05", {"crm_id": "C1000007"})),
            observations(
                ("order:O1", "clickstream", "2024-01-05 10:04", {"user_id": "U7", "anonymous_id": "ck_7"})
            ),
            observations(crm("C1000007", "2023-06-01", email="bo@mail.com")),
        ],
        ignore_index=True,
    )  # fmt: skip
    graph = resolve_graph(frame)
    assert graph.records.values.tolist() == [
        ["crm:C1000007", "crm", "crm_id:C1000007"],
        ["order:O1", "orders", "crm_id:C1000007"],
    ]
    assert graph.evidence[["id_value_l", "id_value_r", "rule", "record_key"]].values.tolist() == [
        ["C1000007", "bo@mail.com", "same_record:crm", "crm:C1000007"],
        ["C1000007", "U7", "same_record:clickstream", "order:O1"],
        ["C1000007", "ck_7", "same_record:clickstream", "order:O1"],
    ]


def test_cookie_that_never_logs_in_is_an_anonymous_visitor() -> None:
    graph = resolve_graph(
        observations(
            visit("2024-01-01", anonymous_id="ck_x", device_id="dv_x"),
            visit("2024-01-02", anonymous_id="ck_y"),
            crm("C1000001", "2024-01-01"),
        )
    )
    nodes = graph.nodes.set_index("id_value")
    assert nodes.loc["ck_x", "cluster_id"] == nodes.loc["dv_x", "cluster_id"] == "anonymous_id:ck_x"
    assert not nodes.loc["ck_x", "is_customer"]
    assert not nodes.loc["ck_y", "is_customer"]
    assert nodes.loc["C1000001", "is_customer"]
    assert (graph.stats["customer_clusters"], graph.stats["anonymous_clusters"]) == (1, 2)


def test_household_landline_does_not_merge_two_people() -> None:
    graph = resolve_graph(
        observations(
            crm("C1000001", "2024-01-01", email="ann@mail.com", phone="+442079460018"),
            crm("C1000002", "2024-01-02", email="ben@mail.com", phone="+442079460018"),
            crm("C1000003", "2024-01-03", email="ann@mail.com", phone="+442079460099"),
            crm("C1000004", "2024-01-04", email="ann@mail.com", phone="+442079460099"),
        )
    )
    assert graph.records["cluster_id"].tolist() == [
        "crm_id:C1000001",
        "crm_id:C1000002",
        "crm_id:C1000001",
        "crm_id:C1000001",
    ]
    # the landline is seen with two email addresses; Ann's own number with one
    assert graph.shared[["id_value", "counted_type", "distinct_values"]].values.tolist() == [
        ["+442079460018", "email", 2]
    ]


def test_device_of_a_family_that_logs_in_once_joins_nobody() -> None:
    graph = resolve_graph(
        observations(
            visit("2024-01-01", anonymous_id="ck_mum", user_id="U1", device_id="dv_tab"),
            visit("2024-01-02", anonymous_id="ck_kid", device_id="dv_tab"),
            visit("2024-01-03", anonymous_id="ck_dad", device_id="dv_tab"),
        )
    )
    assert cluster_of(graph, "anonymous_id", "ck_kid") == "anonymous_id:ck_kid"
    assert cluster_of(graph, "user_id", "U1") == "user_id:U1"
    assert graph.shared[
        ["id_value", "counted_type", "distinct_values", "limit"]
    ].values.tolist() == [["dv_tab", "anonymous_id", 3, 1]]


def test_junk_email_does_not_merge_two_strangers() -> None:
    graph = resolve_graph(
        observations(
            crm("C1000001", "2024-01-01", email="test@test.com"),
            crm("C1000002", "2024-01-02", email=" TEST@test.com"),
            crm("C1000003", "2024-01-03", email="noemail@shop.teal.example"),
            crm("C1000004", "2024-01-04", email="noemail@shop.teal.example"),
        )
    )
    assert cluster_of(graph, "crm_id", "C1000001") == "crm_id:C1000001"
    assert cluster_of(graph, "crm_id", "C1000002") == "crm_id:C1000002"
    assert cluster_of(graph, "crm_id", "C1000004") == "crm_id:C1000004"
    assert graph.never_linked.to_dict("records") == [
        {"id_type": "email", "id_value": " TEST@test.com", "rule": "email value 'test@test.com'", "records": 1},
        {"id_type": "email", "id_value": "noemail@shop.teal.example", "rule": "email pattern '^noemail@'", "records": 2},
        {"id_type": "email", "id_value": "test@test.com", "rule": "email value 'test@test.com'", "records": 1},
    ]  # fmt: skip
    assert graph.evidence.empty
    assert graph.stats["nodes_never_link"] == 3


@pytest.mark.parametrize(
    ("id_type", "value", "never"),
    [
        ("email", "anne@shop.teal.example", False),
        ("email", "bob@example.com", True),
        ("email", "bob@myexample.com", False),
        ("email", "bob@example.co.uk", False),
        ("email", "no-reply@shop.teal.example", True),
        ("phone", "+11111111111", True),
        ("phone", "0000000000", True),
        ("phone", "+447777777777", False),
        ("user_id", "", True),
        ("device_id", "unknown", True),
        ("user_id", "U0", False),
    ],
)
def test_never_link_rules_are_conservative(id_type: str, value: str, never: bool) -> None:
    graph = resolve_graph(observations(crm("C1000001", "2024-01-01", **{id_type: value})))
    assert (graph.nodes.set_index("id_value").loc[value, "status"] == "never_link") is never


def test_record_with_only_junk_is_unresolvable() -> None:
    graph = resolve_graph(
        observations(
            ("consent:E1", "consent", "2024-01-01", {"email": "test@test.com"}),
            ("consent:E2", "consent", "2024-01-01", {"email": "cy@mail.com"}),
        )
    )
    assert record_cluster(graph, "consent:E1") is None
    assert record_cluster(graph, "consent:E2") == "email:cy@mail.com"
    assert graph.stats["records_unresolvable"] == 1
    assert graph.stats["records_unresolvable_by_source"] == {"consent": 1}


def test_email_on_five_crm_ids_is_shared_and_reported() -> None:
    graph = resolve_graph(
        observations(
            *(crm(f"C100000{i}", f"2024-01-0{i}", email="shop@store.com") for i in range(1, 6)),
            crm("C1000009", "2024-01-09", email="dee@mail.com"),
            crm("C1000008", "2024-01-08", email="dee@mail.com"),
        )
    )
    assert [cluster_of(graph, "crm_id", f"C100000{i}") for i in range(1, 6)] == [
        f"crm_id:C100000{i}" for i in range(1, 6)
    ]
    assert cluster_of(graph, "crm_id", "C1000009") == "crm_id:C1000008"
    assert graph.shared[
        ["id_type", "id_value", "counted_type", "distinct_values", "limit"]
    ].to_dict("records") == [
        {
            "id_type": "email",
            "id_value": "shop@store.com",
            "counted_type": "crm_id",
            "distinct_values": 5,
            "limit": 3,
        }
    ]
    assert cluster_of(graph, "email", "shop@store.com") is None


def test_two_user_ids_through_one_cookie_are_refused_with_the_reason() -> None:
    config = load_config()
    config = dataclasses.replace(
        config, shared={k: v for k, v in config.shared.items() if k != "anonymous_id"}
    )
    graph = resolve_graph(
        observations(
            visit("2024-01-02", anonymous_id="ck_1", user_id="U2"),
            visit("2024-01-01", anonymous_id="ck_1", user_id="U1"),
        ),
        config=config,
    )
    assert graph.refused.drop(columns="score").to_dict("records") == [
        {
            "step": 1,
            "id_type_l": "user_id",
            "id_value_l": "U2",
            "id_type_r": "anonymous_id",
            "id_value_r": "ck_1",
            "rule": "same_record:clickstream",
            "record_key": "visit:ck_1|U2|",
            "reason": "profile would hold 2 user_id values (limit 1)",
            "cluster_id_l": "user_id:U2",
            "cluster_id_r": "user_id:U1",
        }
    ]
    assert cluster_of(graph, "anonymous_id", "ck_1") == "user_id:U1"
    # the record whose union was refused takes the cluster of its highest-ranked identifier
    assert record_cluster(graph, "visit:ck_1|U2|") == "user_id:U2"
    assert graph.stats["refused"] == 1


def test_limit_refusal_through_a_chain() -> None:
    # a device may carry two browsers here (the default treats a second browser as shared)
    default = load_config()
    config = dataclasses.replace(
        default, shared={**default.shared, "device_id": {"user_id": 1, "anonymous_id": 2}}
    )
    graph = resolve_graph(
        observations(
            visit("2024-01-01", anonymous_id="ck_1", user_id="U1"),
            visit("2024-01-02", anonymous_id="ck_1", device_id="dv_1"),
            visit("2024-01-03", anonymous_id="ck_2", user_id="U2", device_id="dv_1"),
        ),
        config=config,
    )
    # the older visit links dv_1 to ck_1 (and so U1) first; U2's later link to dv_1 is refused
    refused = graph.refused.iloc[0]
    assert (refused["id_value_l"], refused["id_value_r"]) == ("U2", "dv_1")
    assert refused["reason"] == "profile would hold 2 user_id values (limit 1)"
    assert cluster_of(graph, "device_id", "dv_1") == "user_id:U1"
    assert cluster_of(graph, "anonymous_id", "ck_2") == "user_id:U2"
    assert record_cluster(graph, "visit:ck_2|U2|dv_1") == "user_id:U2"
    assert graph.stats["components_over_limits"] == 1


def test_crm_evidence_wins_over_clickstream_when_a_limit_is_reached() -> None:
    graph = resolve_graph(
        observations(
            ("order:O1", "orders", "2024-01-01", {"loyalty_id": "L00000001", "user_id": "U1"}),
            crm("C1000001", "2024-06-01", loyalty_id="L00000002", user_id="U1"),
            crm("C1000002", "2024-06-02", loyalty_id="L00000003", user_id="U1"),
        )
    )
    # crm edges go first: U1 gathers L..2 and L..3; the older order's L..1 is refused.
    # U1 was first seen on the order, so it anchors the profile.
    assert cluster_of(graph, "loyalty_id", "L00000003") == "user_id:U1"
    assert cluster_of(graph, "crm_id", "C1000002") == "user_id:U1"
    assert cluster_of(graph, "loyalty_id", "L00000001") == "loyalty_id:L00000001"
    assert record_cluster(graph, "order:O1") == "loyalty_id:L00000001"
    assert graph.refused["reason"].tolist() == ["profile would hold 3 loyalty_id values (limit 2)"]


def test_extra_probabilistic_links_merge_two_crm_ids() -> None:
    links = pd.DataFrame(
        [
            ("crm_id", "C1000002", "crm_id", "C1000001", "probabilistic", 14.25),
            ("crm_id", "C1000003", "crm_id", "C1000001", "probabilistic", 9.5),
            ("crm_id", "C1000001", "email", "test@test.com", "probabilistic", 9.0),
            ("crm_id", "C1000001", "crm_id", "C9999999", "probabilistic", 8.0),
        ],
        columns=LINK_COLUMNS,
    )
    graph = resolve_graph(
        observations(
            crm("C1000001", "2024-01-02", email="ed@mail.com"),
            crm("C1000002", "2024-01-01", email="edd@mail.com"),
            crm("C1000003", "2024-01-03", email="test@test.com"),
        ),
        extra_links=links,
    )
    assert cluster_of(graph, "crm_id", "C1000001") == "crm_id:C1000002"
    assert cluster_of(graph, "crm_id", "C1000003") == "crm_id:C1000002"
    extra = graph.evidence[graph.evidence["record_key"].isna()]
    assert extra[["id_value_l", "id_value_r", "rule", "score"]].values.tolist() == [
        ["C1000002", "C1000001", "probabilistic", 14.25],
        ["C1000003", "C1000001", "probabilistic", 9.5],
    ]
    assert graph.refused[["reason", "cluster_id_l"]].values.tolist() == [
        ["email:test@test.com is never_link", "crm_id:C1000002"],
        ["crm_id:C9999999 is not in the observations", "crm_id:C1000002"],
    ]
    assert graph.refused["step"].isna().all()


def test_extra_link_breaking_a_limit_is_refused() -> None:
    links = pd.DataFrame(
        [("crm_id", f"C100000{i}", "crm_id", "C1000001", "probabilistic", 10.0 - i) for i in range(2, 6)],
        columns=LINK_COLUMNS,
    )  # fmt: skip
    graph = resolve_graph(
        observations(*(crm(f"C100000{i}", f"2024-01-0{i}") for i in range(1, 6))),
        extra_links=links,
    )
    assert graph.records["cluster_id"].tolist() == ["crm_id:C1000001"] * 3 + [
        "crm_id:C1000004",
        "crm_id:C1000005",
    ]
    assert graph.refused["reason"].tolist() == ["profile would hold 4 crm_id values (limit 3)"] * 2


def mixed() -> pd.DataFrame:
    return pd.concat(
        [
            family(),
            observations(
                crm("C1000001", "2024-01-01", email="ann@mail.com", phone="+447700900001"),
                crm("C1000002", "2024-01-01", email="ann@mail.com", loyalty_id="L00000001"),
                crm("C1000003", "2024-01-01", email="test@test.com"),
                ("order:O1", "orders", "2024-01-02", {"loyalty_id": "L00000001", "user_id": "U1"}),
                ("order:O2", "orders", "2024-01-02", {"email": "zed@mail.com", "user_id": "U2"}),
                visit("2024-01-01", anonymous_id="ck_9", user_id="U9"),
                visit("2024-01-01", anonymous_id="ck_9", user_id="U8"),
                visit("2024-01-01", anonymous_id="ck_8", device_id="dv_8"),
            ),
        ],
        ignore_index=True,
    )


def test_shuffled_input_gives_identical_output() -> None:
    links = pd.DataFrame(
        [
            ("crm_id", "C1000003", "crm_id", "C1000001", "probabilistic", 5.0),
            ("email", "zed@mail.com", "crm_id", "C1000003", "probabilistic", 5.0),
        ],
        columns=LINK_COLUMNS,
    )
    frame = mixed()
    first = resolve_graph(frame, links)
    shuffled = frame.sample(frac=1, random_state=7)
    shuffled.index = np.arange(len(shuffled))[::-1]
    second = resolve_graph(shuffled, links.iloc[::-1])
    for name in ("nodes", "records", "evidence", "refused", "shared", "never_linked"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert first.stats["clusters"] == second.stats["clusters"] == 7
    assert first.refused["reason"].tolist() == ["profile would hold 2 user_id values (limit 1)"]
    assert first.shared["id_value"].tolist() == ["ck_9", "dv_family", "dv_family"]


def test_duplicate_rows_and_naive_timestamps() -> None:
    frame = observations(crm("C1000001", "2024-01-02", email="ann@mail.com"))
    earlier = frame.iloc[[1]].assign(first_seen_at=pd.Timestamp("2024-01-01", tz="UTC"))
    frame = pd.concat([frame, frame, earlier], ignore_index=True)
    frame["first_seen_at"] = frame["first_seen_at"].dt.tz_localize(None)
    graph = resolve_graph(frame)
    assert graph.nodes["cluster_id"].tolist() == ["email:ann@mail.com"] * 2
    assert len(graph.evidence) == 1


def test_empty_observations() -> None:
    graph = resolve_graph(observations())
    assert graph.nodes.empty and graph.records.empty and graph.evidence.empty
    assert list(graph.nodes.columns) == [
        "id_type",
        "id_value",
        "cluster_id",
        "is_customer",
        "first_seen_at",
        "status",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="source"), "observations lacks column\\(s\\) source"),
        (lambda f: f.assign(id_type="passport"), "'passport' \\(2 rows\\).*Add them to `id_types`"),
        (lambda f: f.assign(source="pos"), "'pos'.*`sources`"),
        (lambda f: f.assign(id_value=[None, "a"]), "id_value is null in 1 row\\(s\\) \\(first at row 0, record_key 'crm:C1000001'\\)"),
        (lambda f: f.assign(id_value=[1, 2]), "id_value must be text, got dtype int64"),
        (lambda f: f.assign(id_value=pd.Series(["a", 2], dtype=object)), "must hold text, but row 1, record_key 'crm:C1000001' holds 2 \\(int\\)"),
        (lambda f: f.assign(first_seen_at="2024-01-01"), "must be a timestamp column"),
        (lambda f: f.assign(first_seen_at=[pd.NaT, pd.NaT]), "first_seen_at is null in 2 row"),
    ],
)  # fmt: skip
def test_bad_observations_are_explained(change, message: str) -> None:
    frame = observations(crm("C1000001", "2024-01-01", email="ann@mail.com"))
    with pytest.raises(InputError, match=message):
        resolve_graph(change(frame))


def test_bad_extra_links_are_explained() -> None:
    frame = observations(crm("C1000001", "2024-01-01"))
    links = pd.DataFrame(
        [("crm_id", "C1", "crm_id", "C2", "probabilistic", None)], columns=LINK_COLUMNS
    )
    with pytest.raises(InputError, match="extra_links.score is missing"):
        resolve_graph(frame, links)
    with pytest.raises(InputError, match="extra_links lacks column\\(s\\) rule"):
        resolve_graph(frame, links.drop(columns="rule"))


def test_default_config_loads() -> None:
    config = load_config()
    assert config.id_types[:3] == ("crm_id", "loyalty_id", "email")
    assert config.limits["user_id"] == 1
    assert config.shared["device_id"] == {"user_id": 1, "anonymous_id": 1}
    assert config.shared["phone"] == {"email": 1, "crm_id": 2}
    assert "user_id" in config.person_types and "device_id" not in config.person_types


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id_types: [crm_id]\nperson_types: [crm_id]\nsources: [crm]\nlimit: {}", "unknown key 'limit' \\(did you mean 'limits'\\?\\)"),
        ("id_types: [crm_id]\nperson_types: [email]\nsources: [crm]", "person_types: 'email' is not an id type"),
        ("id_types: [crm_id]\nperson_types: []\nsources: [crm]\nlimits: {crm_id: 0}", "limits.crm_id must be a whole number of at least 1"),
        ("id_types: [email]\nperson_types: []\nsources: [crm]\nnever_link: {email: {patterns: ['(']}}", "never_link.email.patterns: '\\(' is not a valid regular expression"),
        ("id_types: [email]\nperson_types: []\nsources: [crm]\nshared: {email: {crm_id: 3}}", "shared.email: 'crm_id' is not an id type"),
        ("id_types: [email]\nsources: [crm]", "missing required key 'person_types'"),
    ],
)  # fmt: skip
def test_bad_config_is_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "identity.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_config_replace_is_checked() -> None:
    with pytest.raises(ConfigError, match="limits: 'userid' is not an id type"):
        dataclasses.replace(load_config(), limits={"userid": 1})
    assert isinstance(load_config(), IdentityConfig)


# ---------------------------------------------------------------------------- scale (opt-in)


def synthetic_observations(customers: int, seed: int = 0) -> pd.DataFrame:
    """About 10 rows per customer: CRM rows with duplicates, orders, visits, consent."""
    rng = np.random.default_rng(seed)
    n = customers
    day = np.datetime64("2024-01-01T00:00:00", "us")
    created = day + rng.integers(0, 365 * 86_400, n).astype("timedelta64[s]")
    frames = []

    def add(keys, source, id_type, values, at) -> None:
        frames.append(
            pd.DataFrame(
                {
                    "record_key": keys,
                    "source": source,
                    "id_type": id_type,
                    "id_value": values,
                    "first_seen_at": at,
                }
            )
        )

    person = np.arange(n)
    dup = rng.random(n) < 0.1  # 10% have a second CRM record sharing the email
    crm_person = np.concatenate([person, person[dup]])
    crm_ids = np.char.add("C", (1_000_000 + np.arange(len(crm_person))).astype(str))
    crm_keys = np.char.add("crm:", crm_ids)
    at = created[crm_person]
    add(crm_keys, "crm", "crm_id", crm_ids, at)
    add(
        crm_keys,
        "crm",
        "email",
        np.char.add(np.char.add("p", crm_person.astype(str)), "@mail.com"),
        at,
    )
    phone = np.char.add("+4477009", crm_person.astype(str))
    phone[rng.random(len(phone)) < 0.001] = "0000000000"
    add(crm_keys, "crm", "phone", phone, at)
    card = rng.random(len(crm_person)) < 0.4
    add(
        crm_keys[card],
        "crm",
        "loyalty_id",
        np.char.add("L", (10_000_000 + crm_person[card]).astype(str)),
        at[card],
    )
    # orders: 2 per customer, referenced by crm id, half with the web user id
    orders = rng.integers(0, n, 2 * n)
    order_keys = np.char.add("order:O", np.arange(len(orders)).astype(str))
    order_at = created[orders] + rng.integers(0, 86_400 * 30, len(orders)).astype("timedelta64[s]")
    add(order_keys, "orders", "crm_id", crm_ids[orders], order_at)
    web = rng.random(len(orders)) < 0.5
    add(
        order_keys[web],
        "orders",
        "user_id",
        np.char.add("U", orders[web].astype(str)),
        order_at[web],
    )
    # visits: 1.5 per customer (cookie, user or not, device); 2% on a family device
    who = rng.integers(0, n, int(1.5 * n))
    cookie = np.char.add("ck_", who.astype(str))
    device = np.char.add("dv_", who.astype(str))
    fam = rng.random(len(who)) < 0.02
    device[fam] = np.char.add("dv_fam", (who[fam] // 4).astype(str))
    logged = rng.random(len(who)) < 0.6
    user = np.where(logged, np.char.add("U", who.astype(str)), "")
    visit_keys = np.char.add(
        np.char.add(np.char.add("visit:", cookie), "|"), np.char.add(np.char.add(user, "|"), device)
    )
    visit_at = created[who] + rng.integers(0, 86_400 * 60, len(who)).astype("timedelta64[s]")
    add(visit_keys, "clickstream", "anonymous_id", cookie, visit_at)
    add(visit_keys, "clickstream", "device_id", device, visit_at)
    add(visit_keys[logged], "clickstream", "user_id", user[logged], visit_at[logged])
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates(["record_key", "id_type", "id_value"])


@pytest.mark.skipif(
    not os.environ.get("TEAL_IDENTITY_SCALE"),
    reason="scale check: TEAL_IDENTITY_SCALE=<customers> runs it (1000000 gives ~10M rows)",
)
def test_scale() -> None:
    """Opt-in: `TEAL_IDENTITY_SCALE=1000000 pytest -s -k scale` prints time and memory."""
    from ml.identity.stable_ids import assign_customer_ids

    frame = synthetic_observations(int(os.environ["TEAL_IDENTITY_SCALE"]))
    frame["first_seen_at"] = frame["first_seen_at"].dt.tz_localize("UTC")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    start = time.perf_counter()
    graph = resolve_graph(frame, progress=True)
    middle = time.perf_counter()
    ids = assign_customer_ids(graph, run_id="scale", now=pd.Timestamp("2024-01-01", tz="UTC"))
    end = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"\n{len(frame):,} rows: graph {middle - start:.1f} s, ids {end - middle:.1f} s; "
        f"peak RSS {peak:.2f} GB (input built with a peak of {before:.2f} GB)"
    )
    print(graph.stats)
    assert graph.stats["customer_clusters"] == ids.stats["customers"] > 0
