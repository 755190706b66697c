"""Stable customer ids: rebuilds, incremental days, merges, splits, retirements, collisions."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from identity_builders import crm, observations, visit

from ml.identity import stable_ids
from ml.identity.config import load_config
from ml.identity.graph import IdentityGraph, InputError, resolve_graph
from ml.identity.stable_ids import Assignment, assign_customer_ids, customer_id_for, preview

NOW = pd.Timestamp("2024-02-01 06:00", tz="UTC")

# ids of the anchors used below: sha256("<id_type>:<id_value>")[:16], pinned on purpose
C1 = "cus_86508eefc6f28b9a"  # crm_id:C1000001
C2 = "cus_41894ccd7f03a9e0"  # crm_id:C1000002
C3 = "cus_93a94f1eca972a48"  # crm_id:C1000003
U5 = "cus_913f9bdc05daf3fb"  # user_id:U5
CK = {
    1: "cus_afecb2a2c162bb83",  # anonymous_id:ck_1
    2: "cus_276e465a382332c4",
    3: "cus_c95a95b5a2190704",
    4: "cus_5ed58a9cb4fd2643",
}


def assign(graph: IdentityGraph, previous: Assignment | None = None, **kw) -> Assignment:
    return assign_customer_ids(
        graph.nodes,
        None if previous is None else previous.mapping,
        run_id=kw.pop("run_id", "r1"),
        now=NOW,
        evidence=graph.evidence,
        **kw,
    )


def ids_of(result: Assignment) -> dict[str, str]:
    m = result.mapping
    return dict(zip(m["id_type"] + ":" + m["id_value"], m["customer_id"], strict=True))


def events(result: Assignment) -> list[tuple]:
    frame = result.events.astype(object).where(result.events.notna(), None)
    return list(
        frame[["event_type", "customer_id", "other_customer_id", "reason"]].itertuples(
            index=False, name=None
        )
    )


DAY_1 = (
    crm("C1000001", "2024-01-01", email="ann@mail.com"),
    crm("C1000002", "2024-01-02", email="bob@mail.com", loyalty_id="L00000002"),
    crm("C1000003", "2024-01-03", email="cat@mail.com"),
    visit("2024-01-04", anonymous_id="ck_1", user_id="U1"),
    ("order:O1", "orders", "2024-01-04", {"crm_id": "C1000003", "user_id": "U1"}),
)
DAY_2 = (
    # a CRM duplicate joins Ann and Bob; a new shopper; Cat's user on a new browser
    crm("C1000004", "2024-01-10", email="ann@mail.com", loyalty_id="L00000002"),
    visit("2024-01-10", anonymous_id="ck_5", user_id="U5"),
    visit("2024-01-10", anonymous_id="ck_9", user_id="U1"),
)


def test_new_id_is_the_hash_of_the_anchor() -> None:
    assert customer_id_for("crm_id:C1000001") == C1
    result = assign(resolve_graph(observations(*DAY_1)))
    assert result.customers[["customer_id", "cluster_id", "anchor", "identifiers"]].values.tolist() == [
        [C1, "crm_id:C1000001", "crm_id:C1000001", 2],
        [C2, "crm_id:C1000002", "crm_id:C1000002", 3],
        [C3, "crm_id:C1000003", "crm_id:C1000003", 4],
    ]  # fmt: skip
    assert result.customers["first_seen_at"].tolist() == [
        pd.Timestamp(f"2024-01-0{d}", tz="UTC") for d in (1, 2, 3)
    ]
    assert ids_of(result)["anonymous_id:ck_1"] == C3
    assert events(result) == [
        ("created", C1, None, "new profile"),
        ("created", C2, None, "new profile"),
        ("created", C3, None, "new profile"),
    ]
    assert result.events["run_id"].unique().tolist() == ["r1"]
    assert result.events["event_at"].unique().tolist() == [NOW]


def test_full_rebuild_gives_the_same_ids() -> None:
    frame = observations(*DAY_1, *DAY_2)
    first = assign(resolve_graph(frame))
    again = assign(resolve_graph(frame.sample(frac=1, random_state=3)))
    pd.testing.assert_frame_equal(first.mapping, again.mapping)
    pd.testing.assert_frame_equal(first.customers, again.customers)
    # and a run on its own output changes nothing
    graph = resolve_graph(frame)
    same = assign(graph, first, run_id="r2")
    pd.testing.assert_frame_equal(first.mapping, same.mapping)
    assert same.events.empty
    assert same.stats == {
        "customers": 3,
        "kept": 3,
        "created": 0,
        "merged": 0,
        "split": 0,
        "retired": 0,
    }


def test_a_new_day_keeps_every_id_except_recorded_merges() -> None:
    day_1 = assign(resolve_graph(observations(*DAY_1)))
    graph = resolve_graph(observations(*DAY_1, *DAY_2))
    day_2 = assign(graph, day_1, run_id="r2")
    before, after = ids_of(day_1), ids_of(day_2)
    merged = {C2: C1}
    assert {k: after[k] for k in before} == {k: merged.get(v, v) for k, v in before.items()}
    assert after["anonymous_id:ck_9"] == C3
    assert after["user_id:U5"] == U5
    assert events(day_2) == [
        ("created", U5, None, "new profile"),
        (
            "merged",
            C2,
            C1,
            "joined by same_record:crm (record crm:C1000004): crm_id:C1000004 ~ email:ann@mail.com",
        ),
    ]
    # the survivor is what a rebuild gives
    rebuild = assign(graph)
    pd.testing.assert_frame_equal(rebuild.mapping, day_2.mapping)


def test_merge_survivor_is_the_id_with_the_earliest_identifier() -> None:
    graph = resolve_graph(
        observations(
            crm("C1000001", "2024-01-05", email="eve@mail.com"),
            crm("C1000002", "2024-01-01", email="eve@mail.com"),
        )
    )
    previous = pd.DataFrame(
        [
            ("crm_id", "C1000001", "cus_aaaa"),
            ("email", "eve@mail.com", "cus_aaaa"),
            ("crm_id", "C1000002", "cus_zzzz"),
        ],
        columns=["id_type", "id_value", "customer_id"],
    )
    result = assign_customer_ids(
        graph.nodes, previous, run_id="r2", now=NOW, evidence=graph.evidence
    )
    # both ids' earliest identifiers were first seen on 2024-01-01 (eve@ came with C1000002
    # too): crm_id outranks email, so cus_zzzz survives
    assert set(result.mapping["customer_id"]) == {"cus_zzzz"}
    assert events(result) == [
        (
            "merged",
            "cus_aaaa",
            "cus_zzzz",
            "joined by same_record:crm (record crm:C1000002): crm_id:C1000002 ~ email:eve@mail.com",
        )
    ]


def test_split_id_stays_with_its_anchor_node() -> None:
    graph = resolve_graph(
        observations(
            crm("C1000001", "2024-01-01", email="ann@mail.com"),
            crm("C1000002", "2024-01-02", email="bob@mail.com"),
        )
    )
    previous = pd.DataFrame(
        [
            ("crm_id", "C1000001", "cus_old"),
            ("crm_id", "C1000002", "cus_old"),
            ("email", "ann@mail.com", "cus_old"),
            ("email", "bob@mail.com", "cus_old"),
        ],
        columns=["id_type", "id_value", "customer_id"],
    )
    result = assign_customer_ids(graph.nodes, previous, run_id="r2", now=NOW)
    assert ids_of(result) == {
        "crm_id:C1000001": "cus_old",
        "crm_id:C1000002": C2,
        "email:ann@mail.com": "cus_old",
        "email:bob@mail.com": C2,
    }
    assert events(result) == [
        ("created", C2, "cus_old", "split from cus_old"),
        (
            "split",
            "cus_old",
            C2,
            "2 of its 4 identifiers left for the profile anchored at crm_id:C1000002",
        ),
    ]


def family(config=None) -> IdentityGraph:
    members = [(f"ck_{i}", f"U{i}", f"2024-01-0{i}") for i in range(1, 5)]
    return resolve_graph(
        observations(
            *(visit(f"{at} 08:00", anonymous_id=ck, device_id="dv_family") for ck, _, at in members),
            *(visit(f"{at} 09:00", anonymous_id=ck, user_id=u, device_id="dv_family") for ck, u, at in members),
        ),
        config=config,
    )  # fmt: skip


def test_config_change_marking_a_device_shared_splits_the_family() -> None:
    default = load_config()
    lenient = dataclasses.replace(
        default,
        shared={k: v for k, v in default.shared.items() if k != "device_id"},
        limits={**default.limits, "user_id": 4},
    )
    before = assign(family(lenient))
    assert set(before.mapping["customer_id"]) == {CK[1]}
    after = family(default)
    result = assign(after, before, run_id="r2")
    assert result.customers["anchor"].tolist() == [f"anonymous_id:ck_{i}" for i in (1, 2, 3, 4)]
    assert result.customers["customer_id"].tolist() == [CK[1], CK[2], CK[3], CK[4]]
    why = "device_id:dv_family is now shared"
    split = [
        ("split", CK[1], CK[i], f"2 of its 9 identifiers left for the profile anchored at anonymous_id:ck_{i} ({why})")
        for i in (2, 3, 4)
    ]  # fmt: skip
    assert events(result) == [
        ("created", CK[2], CK[1], f"split from {CK[1]}"),
        ("created", CK[3], CK[1], f"split from {CK[1]}"),
        ("created", CK[4], CK[1], f"split from {CK[1]}"),
        *split,
    ]
    changes = preview(before.mapping, after.nodes, evidence=after.evidence)
    assert list(changes.itertuples(index=False, name=None)) == split
    # the device itself no longer belongs to anyone
    assert "device_id:dv_family" not in ids_of(result)


def test_retired_ids_are_recorded_with_the_reason() -> None:
    graph = resolve_graph(
        observations(
            crm("C1000001", "2024-01-01"),
            visit("2024-01-02", anonymous_id="ck_7"),
            crm("C1000009", "2024-01-02", email="test@test.com"),
        )
    )
    previous = pd.DataFrame(
        [
            ("crm_id", "C1000001", C1),
            ("crm_id", "C1000008", "cus_erased"),
            ("email", "gone@mail.com", "cus_erased"),
            ("anonymous_id", "ck_7", "cus_lapsed"),
            ("user_id", "U7", "cus_lapsed"),
            ("email", "test@test.com", "cus_junk"),
        ],
        columns=["id_type", "id_value", "customer_id"],
    )
    result = assign_customer_ids(graph.nodes, previous, run_id="r2", now=NOW)
    assert events(result) == [
        ("created", "cus_41ed57eeb95591ca", None, "new profile"),
        ("retired", "cus_erased", None, "none of its 2 identifiers is in a customer profile now (2 gone)"),
        ("retired", "cus_junk", None, "none of its 1 identifiers is in a customer profile now (1 never-link)"),
        ("retired", "cus_lapsed", None, "none of its 2 identifiers is in a customer profile now (1 anonymous, 1 gone)"),
    ]  # fmt: skip
    assert customer_id_for("crm_id:C1000009") == "cus_41ed57eeb95591ca"


def test_ordering_is_deterministic() -> None:
    day_1 = assign(resolve_graph(observations(*DAY_1)))
    graph = resolve_graph(observations(*DAY_1, *DAY_2))
    first = assign(graph, day_1, run_id="r2")
    shuffled_nodes = graph.nodes.sample(frac=1, random_state=1).reset_index(drop=True)
    shuffled_previous = day_1.mapping.sample(frac=1, random_state=2).reset_index(drop=True)
    second = assign_customer_ids(
        shuffled_nodes,
        shuffled_previous,
        run_id="r2",
        now=NOW,
        evidence=graph.evidence.sample(frac=1, random_state=3),
    )
    for name in ("mapping", "customers", "events"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert first.mapping["id_type"].tolist()[:3] == ["crm_id"] * 3


def test_hash_collisions_resolve_deterministically(monkeypatch: pytest.MonkeyPatch) -> None:
    # a digest that collides for every anchor; "#k" retries give distinct values
    monkeypatch.setattr(
        stable_ids, "_digest", lambda text: text.rsplit("#", 1)[1].zfill(16) if "#" in text else "0" * 16
    )  # fmt: skip
    graph = resolve_graph(
        observations(crm("C1000002", "2024-01-01"), crm("C1000001", "2024-01-02"))
    )
    fresh = assign_customer_ids(graph.nodes, run_id="r1", now=NOW)
    assert ids_of(fresh) == {
        "crm_id:C1000001": "cus_0000000000000000",
        "crm_id:C1000002": "cus_0000000000000001",
    }
    # an id issued before (even one about to retire) is never handed to someone else
    previous = pd.DataFrame(
        [("crm_id", "C1000003", "cus_0000000000000000")],
        columns=["id_type", "id_value", "customer_id"],
    )
    later = assign_customer_ids(graph.nodes, previous, run_id="r2", now=NOW)
    assert ids_of(later) == {
        "crm_id:C1000001": "cus_0000000000000001",
        "crm_id:C1000002": "cus_0000000000000002",
    }


def test_bad_previous_mapping_is_explained() -> None:
    graph = resolve_graph(observations(crm("C1000001", "2024-01-01")))
    twice = pd.DataFrame(
        [("crm_id", "C1000001", "cus_a"), ("crm_id", "C1000001", "cus_b")],
        columns=["id_type", "id_value", "customer_id"],
    )
    with pytest.raises(InputError, match="crm_id:C1000001 -> cus_a; crm_id:C1000001 -> cus_b"):
        assign_customer_ids(graph.nodes, twice, run_id="r", now=NOW)
    with pytest.raises(InputError, match="previous lacks column\\(s\\) customer_id"):
        assign_customer_ids(graph.nodes, twice.drop(columns="customer_id"), run_id="r", now=NOW)
