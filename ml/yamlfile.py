"""The one way Teal reads a YAML file: safely, fast, and with an error a person can act on.

    data = read_yaml(path)                     # a mapping, or YamlFileError
    items = read_yaml(path, expect=list)

Every YAML file Teal reads (feed contracts, segments, exports, identity settings, the
placeholder-name list) goes through `read_yaml`. It refuses, in well under a second and
without a traceback, what a careless or hostile file can hold:

- bytes that are not UTF-8 (a file saved as Windows-1252 or Latin-1): the message names the
  line and the byte;
- a file larger than `MAX_BYTES`, or nesting deeper than `MAX_DEPTH`;
- aliases that expand beyond `MAX_VALUES` values (the "billion laughs": a few lines of anchors
  that would become billions of values once anything walks them);
- tags (`!!python/object`, `!custom`): only plain YAML values are data;
- keys that are not plain values (`? [a, b]`), and a key given twice in one mapping;
- an empty file, more than one document, or a document of the wrong shape (a list where a
  mapping is expected).

A bare `=` reads as the text "=" (plain YAML would make it a special "value" tag), so operators
in segment rules need no quotes. Messages say `<file> line L, column C: <problem>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 5_000_000
MAX_VALUES = 100_000
MAX_DEPTH = 100


class YamlFileError(ValueError):
    """A YAML file Teal cannot use; `str()` names the file, the place and the problem."""

    def __init__(self, file: str, problem: str, line: int | None = None, column: int | None = None):
        self.file = file
        self.problem = problem
        self.line = line
        self.column = column
        place = f" line {line}" + (f", column {column}" if column else "") if line else ""
        super().__init__(f"{file}{place}: {problem}")


class _TealLoader(yaml.SafeLoader):
    """SafeLoader that refuses repeated and unhashable keys and reads a bare `=` as text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: merged keys may be overridden, that is its purpose
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a key must be a plain value, not a list or mapping",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {_shown(key)} is given twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_TealLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_TealLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _TealLoader.construct_mapping
)

_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}
_SHAPES = {dict: "a mapping (key: value lines)", list: "a list (- item lines)"}


MAX_PROBLEM_CHARS = 400


def clipped(problem: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """A problem message short enough to read: a value a file repeats thousands of times (or an
    alias that expands) is cut, never printed whole."""
    return problem if len(problem) <= limit else problem[: limit - 1] + "…"


def described(error: YamlFileError) -> str:
    """The problem with its place, for a caller that names the file itself."""
    if error.line is None:
        return error.problem
    column = f", column {error.column}" if error.column else ""
    return f"line {error.line}{column}: {error.problem}"


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _decoded(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise YamlFileError(
            file,
            f"is not UTF-8 (byte 0x{data[error.start]:02x}); save the file as UTF-8",
            line,
            column,
        ) from None


def _check_node(node: yaml.Node, file: str) -> None:
    """Refuse tags, deep nesting and alias expansion beyond the limits, without expanding."""
    sizes: dict[int, int] = {}  # id(node) -> values it stands for once expanded
    stack: list[tuple[yaml.Node, int, bool]] = [(node, 1, False)]
    while stack:
        current, depth, children_done = stack.pop()
        if id(current) in sizes:
            continue
        mark = current.start_mark
        if depth > MAX_DEPTH:
            raise YamlFileError(file, f"nests deeper than {MAX_DEPTH} levels", mark.line + 1)
        if current.tag not in _PLAIN_TAGS:
            raise YamlFileError(
                file,
                f"uses the tag {current.tag!r}; only plain values (text, numbers, lists, "
                "mappings) are allowed",
                mark.line + 1,
                mark.column + 1,
            )
        if isinstance(current, yaml.ScalarNode):
            sizes[id(current)] = 1
            continue
        children = (
            [n for pair in current.value for n in pair]
            if isinstance(current, yaml.MappingNode)
            else list(current.value)
        )
        if not children_done:
            stack.append((current, depth, True))
            stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)
            continue
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        if size > MAX_VALUES:
            raise YamlFileError(
                file,
                f"expands to more than {MAX_VALUES:,} values (anchors and aliases that repeat "
                "each other); write the values out",
                mark.line + 1,
            )
        sizes[id(current)] = size


def _flow_depth_over_limit(text: str) -> int | None:
    """The line where `[`/`{` nesting first exceeds MAX_DEPTH, if it does (checked before
    parsing: the parser is recursive, and would take seconds to hit Python's own limit)."""
    depth, line, quote = 0, 1, ""
    for character in text:
        if character == "\n":
            line += 1
        elif quote:
            quote = "" if character == quote else quote
        elif character in "'\"":
            quote = character
        elif character in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif character in "]}":
            depth = max(depth - 1, 0)
    return None


def parse_yaml(text: str, file: str, expect: type = dict) -> Any:
    """The one document of YAML `text` (read from `file`), checked as the module says."""
    empty = f"is empty; expected {_SHAPES.get(expect, expect.__name__)}"
    if not text.strip():
        raise YamlFileError(file, empty)
    deep_at = _flow_depth_over_limit(text)
    if deep_at is not None:
        raise YamlFileError(file, f"nests deeper than {MAX_DEPTH} levels", deep_at)
    try:
        nodes = list(yaml.compose_all(text, Loader=_TealLoader))
        if not nodes or nodes == [None]:
            raise YamlFileError(file, empty)
        if len(nodes) != 1:
            raise YamlFileError(file, f"holds {len(nodes)} YAML documents; expected one")
        _check_node(nodes[0], file)
        loader = _TealLoader(text)
        try:
            data = loader.construct_document(nodes[0])
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(str(error.problem or error.context or "is not valid YAML").split())
        raise YamlFileError(
            file,
            f"is not valid YAML: {problem}",
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as error:
        raise YamlFileError(file, f"is not valid YAML: {' '.join(str(error).split())}") from None
    except RecursionError:
        raise YamlFileError(file, f"nests deeper than {MAX_DEPTH} levels") from None
    if expect is dict and not isinstance(data, Mapping):
        raise YamlFileError(file, f"holds {_kind(data)} at the top; expected {_SHAPES[dict]}")
    if expect is list and not isinstance(data, list):
        raise YamlFileError(file, f"holds {_kind(data)} at the top; expected {_SHAPES[list]}")
    return data


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a single value ({_shown(value)})"


def read_yaml(path: str | Path, expect: type = dict) -> Any:
    """Read one YAML file safely (see the module docstring); YamlFileError when it cannot."""
    path = Path(path)
    file = _display(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise YamlFileError(
                file, f"is {size:,} bytes; a settings file is at most {MAX_BYTES:,}"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise YamlFileError(file, "does not exist") from None
    except IsADirectoryError:
        raise YamlFileError(file, "is a folder, not a file") from None
    except PermissionError:
        raise YamlFileError(file, "cannot be read (permission denied)") from None
    return parse_yaml(_decoded(data, file), file, expect)
