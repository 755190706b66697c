"""Placeholder and junk values that the matcher treats as missing (`placeholders.yml`).

`load_placeholders()` reads and checks the file (safe YAML; every mistake names the file and
the key). `Placeholders.is_name(normalised)` and `.is_date(digits)` answer for one value that
has already been through the matcher's normaliser (`comparisons.normalise_name`,
`comparisons.normalise_date`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("placeholders.yml")
_KEYS = {"version": None, "names": {"words", "single_letters", "values"}, "dates": {"values"}}


class PlaceholderError(ValueError):
    """placeholders.yml is wrong; the message says where and what to write instead."""


@dataclass(frozen=True)
class Placeholders:
    """Name words, whole name values and dates (YYYYMMDD digits) that mean "unknown"."""

    name_words: frozenset[str] = frozenset()
    name_values: frozenset[str] = frozenset()
    single_letters: bool = True
    dates: frozenset[str] = frozenset()

    def is_name(self, name: str) -> bool:
        """Whether a normalised name (lower case letters, single spaces) is a placeholder."""
        if name in self.name_values:
            return True
        words = name.split()
        return bool(words) and all(
            word in self.name_words or (self.single_letters and len(word) == 1) for word in words
        )

    def is_date(self, digits: str) -> bool:
        """Whether a normalised date (YYYYMMDD) is a placeholder."""
        return digits in self.dates


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise PlaceholderError(f"{where} must be a list of quoted strings, got {value!r}")
    return [str(v).strip().lower() for v in value]


def load_placeholders(path: str | Path | None = None) -> Placeholders:
    """Read the placeholder lists (default: ``ml/identity/placeholders.yml``)."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PlaceholderError(
            f"{path}: no such file; pass the path of a placeholders.yml"
        ) from None
    except yaml.YAMLError as exc:
        raise PlaceholderError(f"{path}: is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PlaceholderError(f"{path}: expected a mapping at the top")
    for key, value in data.items():
        if key not in _KEYS:
            raise PlaceholderError(f"{path}: unknown key {key!r}; use {', '.join(_KEYS)}")
        allowed = _KEYS[key]
        if allowed is not None:
            if not isinstance(value, dict):
                raise PlaceholderError(f"{path}: {key} must be a mapping of {sorted(allowed)}")
            unknown = set(value) - allowed
            if unknown:
                raise PlaceholderError(
                    f"{path}: {key}: unknown key(s) {sorted(unknown)}; use {sorted(allowed)}"
                )
    if data.get("version", 1) != 1:
        raise PlaceholderError(f"{path}: version {data['version']!r} is not supported (use 1)")
    names = data.get("names") or {}
    letters = names.get("single_letters", True)
    if not isinstance(letters, bool):
        raise PlaceholderError(f"{path}: names.single_letters must be true or false")
    return Placeholders(
        name_words=frozenset(_strings(names.get("words"), f"{path}: names.words")),
        name_values=frozenset(_strings(names.get("values"), f"{path}: names.values")),
        single_letters=letters,
        dates=frozenset(_strings((data.get("dates") or {}).get("values"), f"{path}: dates.values")),
    )
