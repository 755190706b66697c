"""Splink on a benchmark dataset: one reasonable, documented setup (benchmark only).

Splink (the UK Ministry of Justice's open-source linker) is a dev dependency pinned in
requirements/dev-lock.txt; nothing under ml/ imports it. The setup follows Splink's own
tutorials for deduplicating people, on the same standard columns our matcher gets:

* **Cleaning** (what Splink's docs ask the user to do before linking): text lower-cased and
  trimmed, empty strings as null; dates of birth as ``YYYY-MM-DD`` text when they have eight
  digits (a typo such as ``1958-71-07`` stays, and Splink's date comparison treats it as
  invalid); phones and postcodes without spaces or punctuation.
* **Comparisons**: `NameComparison` on first and last name (Jaro-Winkler 0.92 / 0.88 / 0.7)
  with term-frequency adjustments; `DateOfBirthComparison` (exact, one character off, within a
  month, a year, ten years); Levenshtein on street (1, 3 edits), postcode (1) and phone (1, 2);
  exact city with term frequencies; `EmailComparison`; exact gender and country. Only the
  columns a dataset has are used. This is the setup of Splink's tutorials and its best on
  FEBRL. On a CRM with households it merges households: three address comparisons count one
  shared address three times, and its name comparison has no nickname level, so EM learns
  that a quarter of duplicates carry "another" first name. `combined_address=True`
  (``--splink-combined-address``) makes street and postcode one comparison (each exact, or
  the street within 3 edits, or the postcode within 1, both or either, best first), as
  Splink's guidance that comparisons be independent suggests: better on our generator,
  worse on FEBRL (docs/identity.md has both).
* **Blocking for prediction**: the union of same first and last name, same date of birth,
  same postcode and first-name initial, same street and city, same e-mail and same phone
  (those a dataset has).
* **Training**: λ from deterministic rules (same first name, last name and date of birth; same
  e-mail) at an assumed recall of 0.7; u from 5 million random pairs; m by EM, in two sessions
  blocked on first name, last name and postcode (names alone are mostly namesakes in a large
  file), then on date of birth (or postcode when there is none).
* **Decision**: pairs scored at or above match probability 0.9 are clustered into connected
  components at 0.9. (The tutorials use 0.9 to 0.95; 0.9 is the kinder to Splink's recall.)
"""

from __future__ import annotations

import logging

import pandas as pd

TEXT_COLUMNS = ("first_name", "last_name", "street", "city", "email", "gender", "country")


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """The standard columns cleaned the way Splink's tutorials prepare data (see above)."""
    out = pd.DataFrame({"unique_id": frame["record_id"].astype(str)})
    for column in TEXT_COLUMNS:
        if column in frame.columns:
            text = frame[column].astype("string").str.strip().str.lower()
            out[column] = text.where(text != "")
    if "date_of_birth" in frame.columns:
        digits = frame["date_of_birth"].astype("string").str.replace(r"\D", "", regex=True)
        iso = digits.str.slice(0, 4) + "-" + digits.str.slice(4, 6) + "-" + digits.str.slice(6, 8)
        out["date_of_birth"] = iso.where(digits.str.len() == 8)
    for column in ("phone", "postcode"):
        if column in frame.columns:
            text = frame[column].astype("string").str.replace(r"[^0-9A-Za-z+]", "", regex=True)
            out[column] = text.str.upper().where(text != "")
    return out


def address_comparison():
    """Street and postcode as one comparison: they are not independent (Splink's guidance:
    comparisons should be), and three separate ones count one shared address three times."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.And(cll.NullLevel("street"), cll.NullLevel("postcode")),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("postcode")),
            cll.And(cll.LevenshteinLevel("street", 3), cll.ExactMatchLevel("postcode")),
            cll.And(cll.ExactMatchLevel("street"), cll.LevenshteinLevel("postcode", 1)),
            cll.And(cll.LevenshteinLevel("street", 3), cll.LevenshteinLevel("postcode", 1)),
            cll.ExactMatchLevel("street"),
            cll.ExactMatchLevel("postcode"),
            cll.LevenshteinLevel("street", 3),
            cll.LevenshteinLevel("postcode", 1),
            cll.ElseLevel(),
        ],
        comparison_description="street and postcode",
    )


def run_splink(
    frame: pd.DataFrame, threshold: float = 0.9, seed: int = 42, combined_address: bool = False
) -> pd.Series:
    """Cluster id per record id (Splink's connected components at `threshold`);
    `combined_address`: street and postcode as one comparison (see the module docstring)."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    data = clean(frame)
    has = {c for c in data.columns if data[c].notna().any()}
    comparisons = []
    if "first_name" in has:
        comparisons.append(
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True)
        )
    if "last_name" in has:
        comparisons.append(
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True)
        )
    if "date_of_birth" in has:
        comparisons.append(cl.DateOfBirthComparison("date_of_birth", input_is_string=True))
    if {"street", "postcode"} <= has and combined_address:
        comparisons.append(address_comparison())
    else:
        if "street" in has:
            comparisons.append(cl.LevenshteinAtThresholds("street", [1, 3]))
        if "postcode" in has:
            comparisons.append(cl.LevenshteinAtThresholds("postcode", [1]))
    if "city" in has and not (combined_address and "postcode" in has):
        comparisons.append(cl.ExactMatch("city").configure(term_frequency_adjustments=True))
    if "email" in has:
        comparisons.append(cl.EmailComparison("email"))
    if "phone" in has:
        comparisons.append(cl.LevenshteinAtThresholds("phone", [1, 2]))
    for column in ("gender", "country"):
        if column in has:
            comparisons.append(cl.ExactMatch(column))
    rules = []
    if {"first_name", "last_name"} <= has:
        rules.append(block_on("first_name", "last_name"))
    if "date_of_birth" in has:
        rules.append(block_on("date_of_birth"))
    if {"postcode", "first_name"} <= has:
        rules.append(block_on("postcode", "substr(first_name, 1, 1)"))
    if {"street", "city"} <= has:
        rules.append(block_on("street", "city"))
    for column in ("email", "phone"):
        if column in has:
            rules.append(block_on(column))
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
    )
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(data), settings, log_level=logging.ERROR)
    deterministic = []
    if {"first_name", "last_name", "date_of_birth"} <= has:
        deterministic.append(block_on("first_name", "last_name", "date_of_birth"))
    if "email" in has:
        deterministic.append(block_on("email"))
    if not deterministic:
        deterministic.append(block_on("first_name", "last_name", "postcode"))
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=seed)
    names = ["first_name", "last_name"]
    if "postcode" in has:  # names alone are mostly namesakes in a large or national file
        names.append("postcode")
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(*names))
    second = "date_of_birth" if "date_of_birth" in has else "postcode"
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(second))
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    ).as_pandas_dataframe()
    labels = clusters.set_index("unique_id")["cluster_id"].astype(str)
    ids = data["unique_id"]
    return pd.Series(labels.reindex(ids).fillna(ids.set_axis(ids)).to_numpy(), index=ids.to_numpy())
