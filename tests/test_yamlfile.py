"""Every YAML file Teal reads is read safely: hostile files fail fast with a clear message."""

from __future__ import annotations

import time

import pytest

from ml.yamlfile import MAX_VALUES, YamlFileError, read_yaml

BILLION_LAUGHS_VALUE = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
name: x
value: *i
"""


def refused(tmp_path, content: bytes | str, expect: type = dict) -> YamlFileError:
    path = tmp_path / "hostile.yml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    started = time.perf_counter()
    with pytest.raises(YamlFileError) as error:
        read_yaml(path, expect)
    assert time.perf_counter() - started < 1.0
    assert "hostile.yml" in str(error.value)
    return error.value


def test_plain_yaml_reads_with_a_bare_equals_as_text_and_merge_keys(tmp_path):
    path = tmp_path / "ok.yml"
    path.write_text(
        "defaults: &defaults {owner: crm, purpose: email_marketing}\n"
        "segment:\n  <<: *defaults\n  rule: {field: country, op: =, value: GB}\n",
        encoding="utf-8",
    )
    data = read_yaml(path)
    assert data["segment"] == {
        "owner": "crm",
        "purpose": "email_marketing",
        "rule": {"field": "country", "op": "=", "value": "GB"},
    }


def test_an_alias_bomb_in_a_value_is_refused_fast(tmp_path):
    error = refused(tmp_path, BILLION_LAUGHS_VALUE)
    assert f"expands to more than {MAX_VALUES:,} values" in error.problem
    assert error.line is not None


def test_an_alias_bomb_in_a_rule_tree_is_refused_fast(tmp_path):
    bomb = BILLION_LAUGHS_VALUE.replace("value: *i", "rules: {all: *i}")
    assert "expands to more than" in refused(tmp_path, bomb).problem


def test_an_unhashable_key_is_refused(tmp_path):
    error = refused(tmp_path, "? [a, b]\n: 1\n")
    assert error.problem == "is not valid YAML: a key must be a plain value, not a list or mapping"
    assert (error.line, error.column) == (1, 3)


def test_a_python_tag_is_refused_and_nothing_runs(tmp_path):
    error = refused(tmp_path, "name: !!python/object/apply:os.system ['touch pwned']\n")
    assert "uses the tag 'tag:yaml.org,2002:python/object/apply:os.system'" in error.problem
    assert not (tmp_path / "pwned").exists()
    assert "uses the tag '!custom'" in refused(tmp_path, "name: !custom x\n").problem


def test_latin1_bytes_name_the_line_and_byte(tmp_path):
    error = refused(tmp_path, "name: ok\ndescription: caf\xe9\n".encode("latin-1"))
    assert str(error) == (
        f"{error.file} line 2, column 17: is not UTF-8 (byte 0xe9); save the file as UTF-8"
    )


def test_empty_list_and_scalar_documents_and_repeated_keys(tmp_path):
    assert refused(tmp_path, "").problem == "is empty; expected a mapping (key: value lines)"
    assert refused(tmp_path, "  \n# only a comment\n").problem.startswith("is empty")
    assert refused(tmp_path, "- a\n- b\n").problem == (
        "holds a list at the top; expected a mapping (key: value lines)"
    )
    assert refused(tmp_path, "just text\n").problem.startswith("holds a single value ('just text')")
    assert refused(tmp_path, "a: 1\n", expect=list).problem.startswith("holds a mapping at the top")
    assert refused(tmp_path, "a: 1\n---\nb: 2\n").problem == "holds 2 YAML documents; expected one"
    twice = refused(tmp_path, "name: a\nowner: b\nname: c\n")
    assert (
        twice.problem
        == "is not valid YAML: key 'name' is given twice in one mapping (first on line 1)"
    )
    assert twice.line == 3


def test_deep_nesting_broken_syntax_and_missing_files(tmp_path):
    assert "nests deeper than" in refused(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n").problem
    broken = refused(tmp_path, "name: [unclosed\nowner: x\n")
    assert broken.problem.startswith("is not valid YAML")
    assert broken.line is not None
    with pytest.raises(YamlFileError, match="does not exist"):
        read_yaml(tmp_path / "missing.yml")
    with pytest.raises(YamlFileError, match="is a folder"):
        read_yaml(tmp_path)


# --- the same hostile files through the readers that use read_yaml ---------------------------

HOSTILE = {
    "bomb_in_value.yml": BILLION_LAUGHS_VALUE.replace(
        "name: x\nvalue: *i\n",
        "name: bomb\ndescription: d\nowner: a@b.co\ntype: dynamic\nconsent_purpose: analytics\n"
        "rules: {field: region, operator: in, value: *i}\n",
    ),
    "bomb_in_rules.yml": BILLION_LAUGHS_VALUE.replace(
        "name: x\nvalue: *i\n",
        "name: bomb\ndescription: d\nowner: a@b.co\ntype: dynamic\nconsent_purpose: analytics\n"
        "rules: {all: *i}\n",
    ),
    "unhashable_key.yml": "? [a, b]\n: 1\n",
    "latin1.yml": "name: caf\xe9\n",
}


def write_hostile(folder, name: str) -> None:
    content = HOSTILE[name]
    folder.mkdir(parents=True, exist_ok=True)
    data = content.encode("latin-1") if name == "latin1.yml" else content.encode("utf-8")
    (folder / name).write_bytes(data)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_segment_files_fail_fast_naming_the_file(tmp_path, capsys, name):
    from ml.segments.__main__ import main as segments_cli

    folder = tmp_path / "segments"
    write_hostile(folder, name)
    started = time.perf_counter()
    status = segments_cli(["validate", "--segments-dir", str(folder)])
    assert time.perf_counter() - started < 1.0
    output = capsys.readouterr()
    assert status != 0
    assert name in output.out + output.err
    assert "Traceback" not in output.out + output.err


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_export_files_fail_fast_naming_the_file(tmp_path, name):
    from ml.activation.config import ExportValidationError, load_exports

    folder = tmp_path / "exports"
    write_hostile(folder, name)
    started = time.perf_counter()
    with pytest.raises(ExportValidationError) as error:
        load_exports(folder, segments={})
    assert time.perf_counter() - started < 1.0
    assert name in str(error.value)
    assert len(str(error.value)) < 1000
