"""Segment rules compiled to one DuckDB query per segment, with every value a bound parameter.

The query returns the `customer_id`s of the attribute table that match the rules as of
`$as_of`. Values from the YAML never become SQL text: each is a named parameter (`$p1`, `$p2`,
...; `$as_of` for the cutoff). Column names come from the catalogue (checked there to be plain
names, and quoted here); table names come from `Tables`, never from a segment file; event types
are checked against a fixed list and bound as parameters too.

Field conditions are false on a null value (`coalesce(..., false)`), so `not` includes the
customers whose value is missing. A behavioural condition is a semi-join on the customers whose
events (`occurred_at < as_of`, and `>= as_of - in_the_last` when given) reach the count:

- plain: `group by customer_id [, product_id] having count(*) >= k`;
- `within`: k events inside one sliding window, found with `lag(occurred_at, k - 1)` over the
  customer's (or customer and product's) events in time order: some event is at most the
  window after the event k - 1 places before it. One sort per group, no self-join;
- `at_most k` is the complement of `at_least k + 1` (customers with no events included).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ml.segments.rules import (
    AllOf,
    AnyOf,
    BehaviourCondition,
    FieldCondition,
    Not,
    Rule,
    Segment,
)

_TABLE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
_CATEGORY_COLUMNS = ("category_level_1", "category_level_2", "category_level_3", "category_name")
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_INDENT = "    "


@dataclass(frozen=True)
class Tables:
    """The tables segments read; code settings, never taken from a segment file."""

    attributes: str = "marts.dim_customer_attributes"
    events: str = "marts.fct_clickstream_events"
    products: str = "staging.stg_products__products"

    def __post_init__(self) -> None:
        for name in (self.attributes, self.events, self.products):
            if not _TABLE.match(name):
                raise ValueError(f"table name {name!r} must be `schema.table` in lower case")


@dataclass(frozen=True)
class CompiledSegment:
    """A segment's query (`sql`) and its bound values (`parameters`, without `as_of`)."""

    name: str
    sql: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    uses_as_of: bool = False

    def bind(self, as_of: datetime) -> dict[str, Any]:
        """The named parameters for running `sql` as of `as_of` (naive UTC)."""
        values = dict(self.parameters)
        if self.uses_as_of:
            values["as_of"] = as_of
        return values


def compile_segment(segment: Segment, tables: Tables | None = None) -> CompiledSegment:
    """Compile a validated segment to a query of its members' customer_ids."""
    builder = _Builder(tables or Tables())
    where = builder.rule(segment.rules, top=True)
    sql = (
        "select attributes.customer_id\n"
        f"from {builder.tables.attributes} as attributes\n"
        f"where\n{_indent(where)}"
    )
    return CompiledSegment(segment.name, sql, dict(builder.parameters), builder.uses_as_of)


def _indent(text: str, times: int = 1) -> str:
    return textwrap.indent(text, _INDENT * times)


class _Builder:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.parameters: dict[str, Any] = {}
        self.uses_as_of = False

    def bind(self, value: Any) -> str:
        name = f"p{len(self.parameters) + 1}"
        self.parameters[name] = value
        return f"${name}"

    def as_of(self) -> str:
        self.uses_as_of = True
        return "$as_of"

    def rule(self, rule: Rule, top: bool = False) -> str:
        if isinstance(rule, AllOf | AnyOf):
            joiner = "\nand " if isinstance(rule, AllOf) else "\nor "
            parts = [self.rule(child) for child in rule.conditions]
            if len(parts) == 1:
                return parts[0]
            body = joiner.join(parts)
            return body if top else f"(\n{_indent(body)}\n)"
        if isinstance(rule, Not):
            return f"not (\n{_indent(self.rule(rule.condition, top=True))}\n)"
        if isinstance(rule, FieldCondition):
            return self.field(rule)
        return self.behaviour(rule)

    def field(self, condition: FieldCondition) -> str:
        name = condition.field.name
        if not _COLUMN.match(name):  # the catalogue checks this too; never trust twice-removed
            raise ValueError(f"field {name!r} is not a plain column name")
        column = f'attributes."{name}"'
        operator = condition.operator
        if operator == "is null":
            return f"{column} is null"
        if operator == "is not null":
            return f"{column} is not null"
        if operator in _COMPARISONS:
            test = f"{column} {operator} {self.bind(condition.value)}"
        elif operator == "between":
            low, high = condition.value
            test = f"{column} between {self.bind(low)} and {self.bind(high)}"
        else:  # in, not in
            values = ", ".join(self.bind(v) for v in condition.value)
            test = f"{column} {operator} ({values})"
        return f"coalesce({test}, false)"

    def behaviour(self, condition: BehaviourCondition) -> str:
        if condition.at_least is not None:
            count, membership = condition.at_least, "in"
        else:
            count, membership = condition.at_most + 1, "not in"
        query = self.events_reaching(condition, count)
        return f"attributes.customer_id {membership} (\n{_indent(query)}\n)"

    def events_reaching(self, condition: BehaviourCondition, count: int) -> str:
        """customer_ids with at least `count` matching events (per product, in a window)."""
        filters = ["events.customer_id is not null"]
        events = ", ".join(self.bind(event) for event in condition.events)
        filters.append(f"events.event_type in ({events})")
        filters.append(f"events.occurred_at < {self.as_of()}")
        if condition.in_the_last is not None:
            lookback = self.bind(condition.in_the_last.delta)
            filters.append(f"events.occurred_at >= {self.as_of()} - {lookback}")
        if condition.same_product:
            filters.append("events.product_id is not null")
        if condition.products:
            products = ", ".join(self.bind(p) for p in condition.products)
            filters.append(f"events.product_id in ({products})")
        if condition.url_contains:
            urls = [
                f"contains(lower(events.page_url), lower({self.bind(text)}))"
                for text in condition.url_contains
            ]
            filters.append(_either(urls))
        source = f"from {self.tables.events} as events"
        if condition.categories:
            paths = []
            for levels in condition.categories:
                tests = [
                    f"lower(products.{_CATEGORY_COLUMNS[i]}) = lower({self.bind(level)})"
                    for i, level in enumerate(levels)
                ]
                paths.append(tests[0] if len(tests) == 1 else "(" + " and ".join(tests) + ")")
            filters.append(_either(paths))
            source += "\n" + self.products_join()
        where = "where\n" + _indent("\n".join([filters[0], *(f"and {f}" for f in filters[1:])]))
        group = (
            "events.customer_id, events.product_id"
            if condition.same_product
            else ("events.customer_id")
        )
        if condition.within is None:
            return (
                f"select events.customer_id\n{source}\n{where}\n"
                f"group by {group}\nhaving count(*) >= {self.bind(count)}"
            )
        # k events inside one window: an event at most `within` after the event k - 1 before it.
        offset = self.bind(count - 1)
        span = self.bind(condition.within.delta)
        inner = (
            "select\n"
            f"{_INDENT}events.customer_id,\n"
            f"{_INDENT}events.occurred_at - lag(events.occurred_at, {offset}) over (\n"
            f"{_INDENT * 2}partition by {group}\n"
            f"{_INDENT * 2}order by events.occurred_at\n"
            f"{_INDENT}) as run_span\n"
            f"{source}\n{where}"
        )
        return (
            f"select windowed.customer_id\nfrom (\n{_indent(inner)}\n) as windowed\n"
            f"where windowed.run_span <= {span}"
        )

    def products_join(self) -> str:
        """One row per product (its latest-snapshot row first) for the category filters."""
        columns = ", ".join(_CATEGORY_COLUMNS)
        return (
            "left join (\n"
            f"{_INDENT}select product_id, {columns}\n"
            f"{_INDENT}from {self.tables.products}\n"
            f"{_INDENT}qualify row_number() over (\n"
            f"{_INDENT * 2}partition by product_id\n"
            f"{_INDENT * 2}order by is_in_latest_snapshot desc, {columns}\n"
            f"{_INDENT}) = 1\n"
            ") as products\n"
            f"{_INDENT}on events.product_id = products.product_id"
        )


def _either(tests: list[str]) -> str:
    return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"
