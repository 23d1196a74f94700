"""The flag document: JSON values only, merge keys on values, duplicates and hostile input refused."""

import json
import tracemalloc

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.engine import FlagSetError
from sidecar.store import DocumentLimits, parse_flag_document


def problems(text, source="flags.yaml", **limits):
    with pytest.raises(FlagSetError) as raised:
        parse_flag_document(text, source, DocumentLimits(**limits) if limits else None)
    return [str(problem) for problem in raised.value.problems]


# ---------------------------------------------------------------- merge keys


def test_an_alias_reads_as_its_anchor_after_the_anchor_s_own_merges():
    document = parse_flag_document(
        "base: &base {a: 1, b: 2, <<: {z: 0, a: -1}}\none: {<<: *base, c: 3}\n", "flags.yaml"
    )
    assert document["base"] == {"a": 1, "b": 2, "z": 0}
    assert document["one"] == {"a": 1, "b": 2, "z": 0, "c": 3}


def test_own_keys_win_and_the_earlier_merge_source_wins():
    document = parse_flag_document(
        "x: &x {k: 1, only_x: 1}\ny: &y {k: 2, only_y: 2}\n"
        "m: {<<: [*x, *y], own: 3}\nn: {<<: [*x, *y], k: 9}\n",
        "flags.yaml",
    )
    assert document["m"] == {"k": 1, "only_x": 1, "only_y": 2, "own": 3}
    assert document["n"]["k"] == 9


def test_a_merged_key_is_not_a_duplicate_but_a_repeated_own_key_is():
    assert parse_flag_document("b: &b {k: 1}\nm: {<<: *b, k: 2}\n", "flags.yaml")["m"] == {"k": 2}
    assert problems("m: {k: 1, k: 2}\n") == [
        "flags.yaml: line 1, column 11: key 'k' appears twice in one mapping"
    ]


def test_merging_anything_but_a_mapping_is_a_problem():
    assert "merges a mapping or a list of mappings" in problems("m: {<<: [1, 2]}\n")[0]


def test_anchors_deep_inside_are_whole_before_their_aliases():
    document = parse_flag_document("a: {x: &b {k: 1}}\nc: {<<: *b, j: 2}\n", "flags.yaml")
    assert document["c"] == {"k": 1, "j": 2}


# ---------------------------------------------------------------- only JSON values


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("d: 2001-12-14\n", "a date or time"),
        ("b: !!binary aGVsbG8=\n", "!!binary data"),
        ("s: !!set {a, b}\n", "a !!set"),
        ("o: !!omap [{a: 1}]\n", "an !!omap"),
        ("c: !custom x\n", "tag '!custom'"),
        ("n: .nan\n", "nan is not a JSON number"),
        ("n: [-.inf]\n", "-inf is not a JSON number"),
        ("i: 9007199254740993\n", "beyond +-2^53"),
        ("i: " + "9" * 5000 + "\n", "a number of 5000 characters is out of range"),
        ("on: 1\n", "mapping key True is a boolean (YAML reads unquoted on/off/yes/no as booleans)"),
        ("? [1]\n: 2\n", "mapping key [1] is a list"),
        ("a: &a [*a]\n", "recursive"),
    ],
)
def test_what_json_cannot_carry_is_a_located_problem(text, wording):
    found = problems(text)
    assert len(found) == 1
    assert wording in found[0]


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": [Infinity]}', "Infinity is not a JSON number"),
        ('{"a": 1, "a": 2}', "key 'a' appears twice"),
        ('{"a": "\\ud800"}', "a: a lone surrogate"),
        ('{"a": ' + "1" * 5000 + "}", "not valid JSON"),
        ('{"a": [1, 2, 9007199254740993]}', "a[2]: integer beyond +-2^53"),
        ('{"a": {"b": [0.5, -1e999]}}', "a.b[1]: -inf is not a JSON number"),
    ],
)
def test_json_documents_follow_the_same_rules(text, wording):
    found = problems(text, source="flags.json")
    assert len(found) == 1
    assert wording in found[0]


def test_every_problem_is_listed_at_once():
    found = problems("a: 1\na: 2\nd: 2001-12-14\nn: .nan\nb: !!binary aGVsbG8=\n")
    assert len(found) == 4


def test_bytes_that_are_not_utf8_are_a_problem_with_their_offset():
    assert problems(b"flags: []\nx: \xff\n") == ["flags.yaml: not UTF-8: byte 0xff at offset 13 (line 2)"]


def test_a_byte_order_mark_is_read_as_utf8():
    assert parse_flag_document(b'\xef\xbb\xbf{"flags": []}', "flags.json") == {"flags": []}


def test_an_empty_document_is_none():
    assert parse_flag_document("", "flags.yaml") is None
    assert parse_flag_document("# nothing\n", "flags.yaml") is None


def test_syntax_errors_name_the_line():
    assert problems("flags: [\n")[0].startswith("flags.yaml: not valid YAML at line 2")


# ---------------------------------------------------------------- bounded


def alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_without_being_built():
    text = alias_bomb(8)  # 9^9 values once expanded, from a few hundred bytes
    assert len(text) < 1000
    tracemalloc.start()
    try:
        found = problems(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == [
        "flags.yaml: the document expands to more than 1,000,000 values (aliases included): "
        "it is too large to serve"
    ]
    assert peak < 64 * 2**20


def test_a_json_document_past_the_budget_is_refused():
    assert problems('[1, [2, 3], {"a": [4]}]', source="flags.json", max_values=5)[0].endswith(
        "it is too large to serve"
    )
    assert parse_flag_document('[1, [2, 3], {"a": [4]}]', "flags.json", DocumentLimits(max_values=8))


def test_a_json_document_lists_each_problem_where_it_is():
    found = problems('{"a": [[0, 1e400]], "b": {"c": "\\ud800", "d": 2e400}}', source="flags.json")
    assert [problem.split(": ", 1)[1] for problem in found] == [
        "b.c: a lone surrogate (half of a UTF-16 pair) is not text",
        "b.d: inf is not a JSON number",
        "a[0][1]: inf is not a JSON number",
    ]


def test_aliases_within_the_budget_are_served():
    document = parse_flag_document(alias_bomb(2), "flags.yaml")
    assert len(document["a2"]) == 9
    assert problems(alias_bomb(2), max_values=100)[0].endswith("it is too large to serve")


@pytest.mark.parametrize("source", ["flags.yaml", "flags.json"])
def test_nesting_is_bounded(source):
    assert problems("[" * 65 + "]" * 65, source=source)[0].endswith("nested more than 64 levels deep")
    assert parse_flag_document("[" * 64 + "]" * 64, source) is not None
    assert "nested more than" in problems("[" * 100_000 + "]" * 100_000, source=source)[0]


# ---------------------------------------------------------------- JSON values round-trip

# Text without surrogates, and without the line breaks PyYAML's emitter writes wrongly (NEL, LS, PS).
text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x85\u2028\u2029"))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_reads_back_the_same_from_yaml_and_json(value):
    document = {"value": value}
    assert parse_flag_document(json.dumps(document), "flags.json") == document
    assert parse_flag_document(yaml.safe_dump(document, allow_unicode=True), "flags.yaml") == document


def test_a_json_flag_of_many_brackets_but_shallow_is_served_and_a_deep_one_is_not():
    # A flag whose text opens more brackets than the levels left is walked for its depth.
    shallow = {"key": "a", "metadata": {"lists": [[i] for i in range(100)]}}
    deep = {"key": "b", "metadata": {"x": json.loads("[" * 70 + "]" * 70)}}
    handed = []
    text = json.dumps({"flags": [shallow]})
    assert parse_flag_document(text, "flags.json", on_flag=handed.append) == {"flags": []}
    assert handed == [shallow]
    with pytest.raises(FlagSetError) as raised:
        parse_flag_document(json.dumps({"flags": [shallow, deep]}), "flags.json", on_flag=handed.append)
    assert [str(p) for p in raised.value.problems] == [
        "flags.json: flags[1].metadata.x" + "[0]" * 60 + ": nested more than 64 levels deep"
    ]
