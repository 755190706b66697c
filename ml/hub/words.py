"""A segment's rules in words, for marketers who do not read YAML.

`describe_rule` takes the rule tree as plain data (`ml.segments.rules.rule_to_data`, the form
that is hashed and stored) and returns lines with their depth, top to bottom:

    >>> describe_rule({"all": [{"field": "age_years", "operator": "between", "value": [30, 45]},
    ...     {"behaviour": {"event": ["product_view"], "at_least": 3, "same_product": True,
    ...                    "in_the_last": "48 hours"}}]})
    [(0, 'All of these:'), (1, 'age years is between 30 and 45'), (1, 'at least 3 product views of one product in the last 48 hours')]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# event type -> (one, many), as a marketer would say it
EVENT_NOUNS = {
    "page_view": ("page view", "page views"),
    "product_view": ("product view", "product views"),
    "search": ("search", "searches"),
    "add_to_cart": ("basket add", "basket adds"),
    "remove_from_cart": ("basket removal", "basket removals"),
    "checkout_start": ("checkout start", "checkout starts"),
    "purchase": ("purchase", "purchases"),
    "login": ("login", "logins"),
    "email_open": ("email open", "email opens"),
    "email_click": ("email click", "email clicks"),
}
OPERATOR_WORDS = {
    "=": "is",
    "!=": "is not",
    "<": "is less than",
    "<=": "is at most",
    ">": "is more than",
    ">=": "is at least",
}

Line = tuple[int, str]


def describe_rule(rule: Any, depth: int = 0) -> list[Line]:
    """The rule as (depth, sentence) lines; groups introduce their conditions one level deeper."""
    if "all" in rule:
        return [(depth, "All of these:"), *_each(rule["all"], depth + 1)]
    if "any" in rule:
        return [(depth, "At least one of these:"), *_each(rule["any"], depth + 1)]
    if "not" in rule:
        return [(depth, "Not this:"), *describe_rule(rule["not"], depth + 1)]
    if "field" in rule:
        return [(depth, describe_condition(rule))]
    if "behaviour" in rule:
        return [(depth, describe_behaviour(rule["behaviour"]))]
    raise ValueError(f"not a segment rule: {rule!r}")


def _each(rules: Sequence[Any], depth: int) -> list[Line]:
    return [line for rule in rules for line in describe_rule(rule, depth)]


def describe_condition(condition: dict[str, Any]) -> str:
    """`field operator value` as a sentence: 'days since last order is at least 180'."""
    field = str(condition["field"]).replace("_", " ")
    operator = condition["operator"]
    value = condition.get("value")
    if operator == "is null":
        return f"{field} is unknown"
    if operator == "is not null":
        return f"{field} is known"
    if operator == "between":
        low, high = value
        return f"{field} is between {_value(low)} and {_value(high)}"
    if operator in ("in", "not in"):
        values = list(value)
        if len(values) == 1:
            return f"{field} {'is' if operator == 'in' else 'is not'} {_value(values[0])}"
        listed = _listed([_value(v) for v in values], "or")
        return f"{field} is {'one' if operator == 'in' else 'none'} of {listed}"
    return f"{field} {OPERATOR_WORDS[operator]} {_value(value)}"


def describe_behaviour(behaviour: dict[str, Any]) -> str:
    """A behaviour condition as a sentence: 'at least 3 product views of one product in the
    last 48 hours', 'no purchases in the last 24 hours'."""
    events = list(behaviour["event"])
    at_least, at_most = behaviour.get("at_least"), behaviour.get("at_most")
    parts = [_count(events, at_least, at_most)]
    if behaviour.get("same_product"):
        parts.append("of one product")
    if behaviour.get("product"):
        parts.append(f"of product {_listed(list(behaviour['product']), 'or')}")
    if behaviour.get("category"):
        parts.append(f"in category {_listed(list(behaviour['category']), 'or')}")
    if behaviour.get("url_contains"):
        quoted = _listed([_value(str(text)) for text in behaviour["url_contains"]], "or")
        parts.append(f"on pages whose address contains {quoted}")
    if behaviour.get("within"):
        parts.append(f"within {behaviour['within']} of each other")
    if behaviour.get("in_the_last"):
        parts.append(f"in the last {behaviour['in_the_last']}")
    else:
        parts.append("at any time")
    return " ".join(parts)


def _count(events: list[str], at_least: int | None, at_most: int | None) -> str:
    def nouns(count: int | None) -> str:
        index = 0 if count == 1 else 1
        return _listed([EVENT_NOUNS.get(e, (e, e))[index] for e in events], "or")

    if at_most == 0:
        return f"no {nouns(None)}"
    if at_least is not None and at_most is not None:
        return f"between {at_least} and {at_most} {nouns(at_most)}"
    if at_most is not None:
        return f"at most {at_most} {nouns(at_most)}"
    count = 1 if at_least is None else at_least
    return f"at least {count} {nouns(count)}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return f"“{value}”"
    return str(value)


def _listed(items: list[str], last_word: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last_word} " + items[-1]
