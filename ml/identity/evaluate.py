"""How good is identity resolution? Compare the resolved identities with the generator's truth.

    python -m ml.identity.evaluate [--warehouse data/warehouse.duckdb] [--truth data/ground_truth]

The unit is the identifier (crm id, loyalty id, email, phone, login, cookie, device): the
predicted cluster of an identifier is its customer id in `identity.identifiers` (an identifier
with no customer, such as an anonymous cookie or a junk value, is a cluster of its own); the
true cluster is the person the generator made it for (`identifiers.csv`). Identifiers the truth
gives to several people (a family's shared device) are left out: no single answer is right.

Two truths are scored:

* `person`: every identifier of a person together. Some links are in no feed at all (a web
  login whose owner never bought online in the clickstream window has nothing that ties it to
  their CRM record), so no resolver can reach a recall of 1 here.
* `reachable`: the person's identifiers split into the groups that the feeds *can* join: two
  identifiers are reachable together when a chain of records ties them and every record of the
  chain belongs to that person, or when both are CRM records of that person (the probabilistic
  matcher's job). This is the bar the tests hold resolution to.

Three scopes are reported: `people` (the person identifiers: crm id, loyalty id, email,
phone, login; reachable truth), the bar the tests hold resolution to; `all` (cookies and
devices too; reachable truth), where recall is lower by design, because a device seen with two
or more cookies links nobody (identity.yml: a family member who never logs in leaves only a
cookie, so such a device may be shared); `all_person_truth`. Figures: pairwise precision,
recall and F1 (over pairs of identifiers placed together), and cluster figures
(`ml.identity.metrics`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ml.identity.metrics import cluster_metrics, pairwise_metrics
from ml.normalise import mailbox_key
from ml.settings import REPO_ROOT, Settings

TRUTH_KINDS = {"phone_e164": "phone"}


PERSON_TYPES = ("crm_id", "loyalty_id", "email", "phone", "user_id")
SCOPES = {
    "people": "person identifiers (crm id, loyalty id, email, phone, login), reachable truth",
    "all": "every identifier, cookies and devices included, reachable truth",
    "all_person_truth": "every identifier, person truth",
}


@dataclass(frozen=True)
class Evaluation:
    """Scores of one resolution: one dict of figures per scope of `SCOPES`."""

    identifiers: int
    left_out_shared: int
    scopes: dict[str, dict]

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return {
            "identifiers": self.identifiers,
            "left_out_shared": self.left_out_shared,
            **self.scopes,
        }


def load_truth(truth_dir: Path) -> pd.DataFrame:
    """`id_type, id_value, person_id` of every identifier the truth gives to exactly one person, and
    the count of those it gives to several (in `.attrs["shared"]`)."""
    truth = pd.read_csv(truth_dir / "identifiers.csv", dtype=str)
    truth["id_type"] = truth["kind"].replace(TRUTH_KINDS)
    truth = truth.rename(columns={"value": "id_value"})[["id_type", "id_value", "person_id"]]
    people = truth.groupby(["id_type", "id_value"])["person_id"].transform("nunique")
    single = truth[people == 1].drop_duplicates(["id_type", "id_value"]).reset_index(drop=True)
    single.attrs["shared"] = int(
        truth[people > 1][["id_type", "id_value"]].drop_duplicates().shape[0]
    )
    return single


def reachable_groups(observations: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """For each identifier of `truth` (same order), the group of its person's identifiers that the
    records can join (see the module docstring)."""
    keys = truth["id_type"] + ":" + truth["id_value"]
    index = pd.Series(np.arange(len(truth)), index=keys.to_numpy())
    person = truth["person_id"].to_numpy()
    obs = observations.assign(key=observations["id_type"] + ":" + observations["id_value"])
    obs = obs[obs["key"].isin(index.index)]
    obs = obs.assign(node=index.reindex(obs["key"]).to_numpy())
    obs = obs.assign(person=person[obs["node"].to_numpy()])
    # a record joins its identifiers only when all of them belong to one person
    people_per_record = obs.groupby("record_key")["person"].transform("nunique")
    obs = obs[people_per_record == 1]
    first = obs.groupby("record_key")["node"].transform("min")
    left, right = [obs["node"].to_numpy()], [first.to_numpy()]
    # CRM records of one person: the probabilistic matcher's links
    crm = truth.index[truth["id_type"] == "crm_id"].to_numpy()
    crm_first = pd.Series(crm).groupby(person[crm]).transform("min").to_numpy()
    left.append(crm)
    right.append(crm_first)
    rows, cols = np.concatenate(left), np.concatenate(right)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(len(truth),) * 2)
    _, labels = connected_components(graph, directed=False)
    return pd.Series(labels, index=truth.index)


def with_mailboxes(truth: pd.DataFrame) -> pd.DataFrame:
    """`truth` and, after it, the mailbox each email reaches (ml/normalise.py `mailbox_key`)
    with the email's person, where the mailbox is one person's: the `mailbox` identifiers
    identity sees join spellings of one mailbox, so records joined through one are reachable
    together. Mailboxes are not scored; they only carry reachability."""
    emails = truth[truth["id_type"] == "email"]
    mailboxes = pd.DataFrame(
        {
            "id_type": "mailbox",
            "id_value": [mailbox_key(value) for value in emails["id_value"]],
            "person_id": emails["person_id"].to_numpy(),
        }
    ).drop_duplicates()
    owners = mailboxes.groupby("id_value")["person_id"].transform("nunique")
    return pd.concat([truth, mailboxes[owners == 1]], ignore_index=True)


def evaluate(connection: duckdb.DuckDBPyConnection, truth_dir: Path) -> Evaluation:
    """Score `identity.identifiers` in the warehouse against the truth in `truth_dir`."""
    truth = load_truth(truth_dir)
    predicted = connection.execute(
        "select id_type, id_value, customer_id from identity.identifiers"
    ).df()
    observations = connection.execute(
        "select distinct record_key, id_type, id_value from intermediate.int_identifiers_observed"
    ).df()
    scored = truth.merge(predicted, on=["id_type", "id_value"], how="inner").reset_index(drop=True)
    alone = scored["customer_id"].isna()
    label = scored["customer_id"].where(
        ~alone, "alone:" + scored["id_type"] + ":" + scored["id_value"]
    )
    keys = pd.Index(scored["id_type"] + ":" + scored["id_value"])
    predicted_clusters = pd.Series(label.to_numpy(), index=keys)
    person = pd.Series(scored["person_id"].to_numpy(), index=keys)
    people_truth = scored[["id_type", "id_value", "person_id"]]
    reachable = reachable_groups(observations, with_mailboxes(people_truth))
    reachable = pd.Series(reachable.to_numpy()[: len(scored)], index=keys)
    people = scored["id_type"].isin(PERSON_TYPES).to_numpy()
    scopes = {
        "people": (predicted_clusters[people], reachable[people]),
        "all": (predicted_clusters, reachable),
        "all_person_truth": (predicted_clusters, person),
    }
    return Evaluation(
        identifiers=len(scored),
        left_out_shared=truth.attrs["shared"],
        scopes={
            name: {**pairwise_metrics(*pair), **cluster_metrics(*pair)}
            for name, pair in scopes.items()
        },
    )


def threshold_curve(
    resolution: Any, truth: pd.Series, thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """Pairwise precision and recall of a matcher run at other decision thresholds.

    `resolution` is a `ml.identity.matching.Resolution`, `truth` the true entity of each record
    id. At each threshold the entities are the connected components of the run's scored pairs
    at or above it (pairs vetoed or dropped by the chaining guard stay out; the guard is not
    rerun per threshold). Thresholds below the run's `near_miss` see only the pairs it kept.
    """
    links = resolution.links
    usable = ~links["decision"].astype(str).str.startswith(("vetoed", "dropped"))
    ids = resolution.entities["record_id"]
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    left = position.reindex(links["record_id_l"]).to_numpy()
    right = position.reindex(links["record_id_r"]).to_numpy()
    chance = links["match_probability"].to_numpy()
    out = []
    for threshold in thresholds:
        keep = usable.to_numpy() & (chance >= threshold)
        graph = coo_matrix(
            (np.ones(int(keep.sum()), dtype=np.int8), (left[keep], right[keep])),
            shape=(len(ids), len(ids)),
        )
        _, labels = connected_components(graph, directed=False)
        figures = pairwise_metrics(pd.Series(labels, index=ids.to_numpy()), truth)
        out.append(
            {
                "threshold": float(threshold),
                "precision": figures["precision"],
                "recall": figures["recall"],
                "f1": figures["f1"],
            }
        )
    return out


def render(evaluation: Evaluation) -> str:
    """The figures as a short table."""
    lines = [
        f"{evaluation.identifiers:,} identifiers scored "
        f"({evaluation.left_out_shared:,} shared by several people left out)",
        f"{'scope':<18}{'precision':>10}{'recall':>10}{'F1':>10}  what",
    ]
    for name, what in SCOPES.items():
        figures = evaluation.scopes[name]
        lines.append(
            f"{name:<18}{figures['precision']:>10.4f}{figures['recall']:>10.4f}"
            f"{figures['f1']:>10.4f}  {what}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=None, help="default: $TEAL_WAREHOUSE")
    parser.add_argument("--truth", type=Path, default=REPO_ROOT / "data" / "ground_truth")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args(argv)
    warehouse = args.warehouse or Settings.from_env().warehouse
    if not (args.truth / "identifiers.csv").exists():
        print(
            f"No ground truth in {args.truth}: it comes with generated sample data.",
            file=sys.stderr,
        )
        return 2
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        evaluation = evaluate(connection, args.truth)
    print(json.dumps(evaluation.as_dict(), indent=2) if args.json else render(evaluation))
    return 0


if __name__ == "__main__":
    sys.exit(main())
