"""The identity graph's configuration: identifier types, merge protection, limits.

The rules live in `ml/identity/identity.yml` (commented there); `load_config()` reads and
checks them into an `IdentityConfig`. Every mistake is reported with the file, the key and
what to write instead, before any data is touched.

Matching of never-link rules: an identifier is never-link when its value, trimmed and
lower-cased, equals one of the `values`, or when one of the `patterns` (Python regular
expressions, searched case-insensitively) matches it. Rules under `all` apply to every type.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("identity.yml")
ALL_TYPES = "all"
_TOP_KEYS = ("version", "id_types", "person_types", "sources", "never_link", "shared", "limits")
_RULE_KEYS = ("values", "patterns")


class ConfigError(ValueError):
    """The identity configuration is wrong; the message says where and what to do."""


@dataclass(frozen=True)
class NeverLinkRule:
    """Values and patterns of one scope (an id type, or `all`) that never link."""

    values: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    compiled: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class IdentityConfig:
    """Merge protection and ordering rules for `resolve_graph` and `assign_customer_ids`.

    `id_types` is in rank order: the earlier type wins ties when picking a cluster's anchor
    and a record's cluster. `sources` is the order in which same-record edges are applied.
    `never_link` maps a scope to its rule, `shared` maps an id type to {counted type: limit},
    `limits` maps an id type to the most distinct values one profile may hold.
    """

    id_types: tuple[str, ...]
    person_types: tuple[str, ...]
    sources: tuple[str, ...]
    never_link: Mapping[str, NeverLinkRule] = field(default_factory=dict)
    shared: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    limits: Mapping[str, int] = field(default_factory=dict)
    origin: str = field(default="<config>", compare=False)

    def __post_init__(self) -> None:
        where = self.origin
        _check_names(self.id_types, "id_types", where)
        _check_names(self.sources, "sources", where)
        known = set(self.id_types)
        for name in self.person_types:
            _check_type(name, known, "person_types", where)
        rules: dict[str, NeverLinkRule] = {}
        for scope, rule in self.never_link.items():
            if scope != ALL_TYPES:
                _check_type(scope, known, "never_link", where)
            compiled = []
            for pattern in rule.patterns:
                try:
                    compiled.append(re.compile(pattern, re.IGNORECASE))
                except re.error as exc:
                    raise ConfigError(
                        f"{where}: never_link.{scope}.patterns: {pattern!r} is not a valid "
                        f"regular expression ({exc}); fix it or quote it in single quotes"
                    ) from None
            values = tuple(str(v).strip().lower() for v in rule.values)
            rules[scope] = NeverLinkRule(values, tuple(rule.patterns), tuple(compiled))
        object.__setattr__(self, "never_link", rules)
        for id_type, counted in self.shared.items():
            _check_type(id_type, known, "shared", where)
            for other, limit in counted.items():
                _check_type(other, known, f"shared.{id_type}", where)
                _check_limit(limit, f"shared.{id_type}.{other}", where)
        for id_type, limit in self.limits.items():
            _check_type(id_type, known, "limits", where)
            _check_limit(limit, f"limits.{id_type}", where)

    def rank(self, id_type: str) -> int:
        """Position of `id_type` in `id_types` (0 is the highest priority)."""
        return self.id_types.index(id_type)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "<dict>") -> IdentityConfig:
        """Build a config from parsed YAML, checking every key; `origin` names it in errors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{origin}: expected a mapping at the top, got {type(data).__name__}")
        for key in data:
            if key not in _TOP_KEYS:
                raise ConfigError(f"{origin}: unknown key {key!r}{_did_you_mean(key, _TOP_KEYS)}")
        if data.get("version", 1) != 1:
            raise ConfigError(
                f"{origin}: version {data['version']!r} is not supported; this code reads version 1"
            )
        for key in ("id_types", "person_types", "sources"):
            if key not in data:
                raise ConfigError(f"{origin}: missing required key {key!r} (a list of names)")
            if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
                raise ConfigError(f"{origin}: {key} must be a list of names, got {data[key]!r}")
        never_link: dict[str, NeverLinkRule] = {}
        for scope, rule in _mapping(data.get("never_link"), "never_link", origin).items():
            rule = _mapping(rule, f"never_link.{scope}", origin)
            for key in rule:
                if key not in _RULE_KEYS:
                    raise ConfigError(
                        f"{origin}: never_link.{scope}: unknown key {key!r}"
                        f"{_did_you_mean(key, _RULE_KEYS)} (expected values and/or patterns)"
                    )
            lists = {}
            for key in _RULE_KEYS:
                items = rule.get(key) or []
                if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                    raise ConfigError(
                        f"{origin}: never_link.{scope}.{key} must be a list of quoted strings, "
                        f"got {items!r}"
                    )
                lists[key] = tuple(items)
            never_link[str(scope)] = NeverLinkRule(lists["values"], lists["patterns"])
        shared = {
            str(t): dict(_mapping(v, f"shared.{t}", origin))
            for t, v in _mapping(data.get("shared"), "shared", origin).items()
        }
        limits = dict(_mapping(data.get("limits"), "limits", origin))
        return cls(
            id_types=tuple(data["id_types"]),
            person_types=tuple(data["person_types"]),
            sources=tuple(data["sources"]),
            never_link=never_link,
            shared=shared,
            limits=limits,
            origin=origin,
        )


def load_config(path: str | Path | None = None) -> IdentityConfig:
    """Read and check the identity configuration (default: `ml/identity/identity.yml`)."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; pass the path of an identity.yml") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: is not valid YAML ({exc})") from None
    return IdentityConfig.from_dict(data, origin=str(path))


def _mapping(value: Any, key: str, origin: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{origin}: {key} must be a mapping, got {value!r}")
    return value


def _check_names(names: tuple[str, ...], key: str, where: str) -> None:
    if not names:
        raise ConfigError(f"{where}: {key} is empty; list at least one name")
    seen = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: {key} holds {name!r}; names are non-empty strings")
        if name in seen:
            raise ConfigError(f"{where}: {key} lists {name!r} twice; keep one")
        seen.add(name)


def _check_type(name: str, known: set[str], key: str, where: str) -> None:
    if name not in known:
        raise ConfigError(
            f"{where}: {key}: {name!r} is not an id type{_did_you_mean(name, known)}; "
            f"add it to id_types or use one of {sorted(known)}"
        )


def _check_limit(limit: Any, key: str, where: str) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"{where}: {key} must be a whole number of at least 1, got {limit!r}")


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
