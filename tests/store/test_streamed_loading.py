"""A document's flags are read as the parser hands them over (loading.compile_document): the same
definitions, fingerprints and problems as reading the whole document at once."""

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import flagsets
from sidecar.engine import FlagSetError, compile_flag_set
from sidecar.sources import JSON, YAML, Document
from sidecar.store import parse_flag_document
from sidecar.store.loading import compile_document

REPO = Path(__file__).resolve().parents[2]


def whole(text, fmt):
    """The reference: the whole document parsed, then read and compiled."""
    source = f"flags.{fmt}"
    return compile_flag_set(parse_flag_document(text, source, json_format=fmt == JSON), source)


def streamed(text, fmt):
    return compile_document(Document(text.encode(), fmt, "r1", f"flags.{fmt}"))


def outcome(load, text, fmt):
    """The flag set's definitions and fingerprints, or the problems (as a sorted list)."""
    try:
        flag_set = load(text, fmt)
    except FlagSetError as error:
        return sorted(str(problem) for problem in error.problems)
    flags = {key: (flag.definition, flag.fingerprint) for key, flag in flag_set.flags.items()}
    segments = {key: (seg.definition, seg.fingerprint) for key, seg in flag_set.segments.items()}
    return flags, segments, sorted(str(warning) for warning in flag_set.warnings)


def texts(document):
    """The document in YAML (block style, as people write it) and in JSON."""
    return {YAML: yaml.safe_dump(document, sort_keys=False), JSON: json.dumps(document)}


DOCUMENTS = {
    "example": yaml.safe_load((REPO / "examples" / "flags.yaml").read_text()),
    "conformance": yaml.safe_load((REPO / "tests" / "conformance" / "flags.yaml").read_text()),
    "bench, 300 flags": flagsets.flag_document(300),
    # No part repeats: the reader's memo of repeated parts gives up after its trial (compiler._Memo).
    "bench, 1,500 distinct flags": flagsets.flag_document(1_500, distinct=True),
}


@pytest.mark.parametrize("name", DOCUMENTS)
@pytest.mark.parametrize("fmt", [YAML, JSON])
def test_a_valid_document_loads_the_same(name, fmt):
    text = texts(DOCUMENTS[name])[fmt]
    result = outcome(streamed, text, fmt)
    assert not isinstance(result, list), result
    assert result == outcome(whole, text, fmt)
    assert len(result[0]) == len(DOCUMENTS[name]["flags"])


def test_each_flag_is_handed_over_and_left_out_of_the_rest():
    document = flagsets.flag_document(5)
    for fmt, text in texts(document).items():
        handed = []
        rest = parse_flag_document(text, f"flags.{fmt}", json_format=fmt == JSON, on_flag=handed.append)
        assert handed == document["flags"], fmt
        assert rest == {"flags": [], "segments": document["segments"]}, fmt


def test_an_anchored_flag_list_stays_whole():
    # Its alias must read as the whole list, so it is not handed over item by item.
    text = "flags: &all\n  - {key: a, enabled: true, variants: [{key: x, value: 1}]}\nsegments: []\n"
    handed = []
    rest = parse_flag_document(text, "flags.yaml", on_flag=handed.append)
    assert handed == []
    assert [flag["key"] for flag in rest["flags"]] == ["a"]


FLAG = {"key": "f", "enabled": True, "variants": [{"key": "on", "value": True}], "defaultVariantWhenOn": "on"}


def in_segment(key, *segments):
    rule = {
        "constraints": [{"operation": "IS_IN_SEGMENT", "values": list(segments)}],
        "distributions": [{"variant": "on", "percentage": 100}],
    }
    return {**FLAG, "key": key, "rules": [rule]}


SEGMENT = {
    "key": "beta",
    "rules": [{"constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["pro"]}]}],
}


def nested(levels):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


BROKEN = {
    # Flags before the segments (as most files are written): their references are checked later.
    "unknown segment, flags first": {"flags": [in_segment("a", "beta", "gamma")], "segments": [SEGMENT]},
    "unknown segment, segments first": {"segments": [SEGMENT], "flags": [in_segment("a", "gamma")]},
    "duplicate flag keys": {"flags": [FLAG, FLAG, in_segment("b", "nope")], "segments": []},
    "a broken flag among good ones": {
        "flags": [FLAG, {**FLAG, "key": "g", "variants": []}, in_segment("h", "beta")],
        "segments": [SEGMENT, {"key": "beta"}],
    },
    "values JSON cannot carry": {"flags": [{**FLAG, "variants": [{"key": "on", "value": 2**60}]}]},
    # Past the first flags (JSON's check walks only the containers until a number is in doubt).
    "an integer JSON cannot carry, later": {
        "flags": [FLAG, {**FLAG, "key": "g", "variants": [{"key": "on", "value": [1, -(2**60)]}]}]
    },
    "a value nested too deep": {"flags": [FLAG, {**FLAG, "key": "g", "metadata": {"a": nested(70)}}]},
    "an unknown top-level field": {"flags": [FLAG], "flag": []},
}


@pytest.mark.parametrize("name", BROKEN)
@pytest.mark.parametrize("fmt", [YAML, JSON])
def test_a_broken_document_gives_the_same_problems(name, fmt):
    text = texts(BROKEN[name])[fmt]
    result = outcome(streamed, text, fmt)
    assert isinstance(result, list), result
    assert result == outcome(whole, text, fmt)


@pytest.mark.parametrize(
    "text",
    [
        '{"flags": [{"key": "a"},]}',
        '{"flags": [{"key": "a"} {"key": "b"}]}',
        '{"flags" [] }',
        '{"flags": [], }',
        '{"flags": []} {}',
        "{flags: []}",
        '{"flags": [{"key": "a", "enabled": NaN}]}',
        '{"flags": [], "flags": []}',
        '{"flags": [{"key": "a", "enabled": true, "key": "b"}]}',
        '{"flags": [',
        "",
        "[]",
        '{"flags": {"key": "a"}}',
    ],
)
def test_json_syntax_errors_read_as_the_decoder_words_them(text):
    assert outcome(streamed, text, JSON) == outcome(whole, text, JSON)


@settings(max_examples=60, deadline=None)
@given(
    flags=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.lists(st.sampled_from(["beta", "gamma"]), max_size=2)),
        max_size=4,
    ),
    segments_first=st.booleans(),
    with_segment=st.booleans(),
    fmt=st.sampled_from([YAML, JSON]),
)
def test_any_mix_of_references_and_duplicates_gives_the_same_outcome(
    flags, segments_first, with_segment, fmt
):
    raw_flags = [in_segment(key, *refs) if refs else {**FLAG, "key": key} for key, refs in flags]
    segments = [SEGMENT] if with_segment else []
    document = (
        {"segments": segments, "flags": raw_flags}
        if segments_first
        else {"flags": raw_flags, "segments": segments}
    )
    text = texts(document)[fmt]
    assert outcome(streamed, text, fmt) == outcome(whole, text, fmt)


# JSON text written by hand, so that an object may write a key twice (json.dumps never does): keys
# and strings with colons, quotes and backslashes, written as they are or escaped (the same key
# either way; an escaped colon is no colon in the text), and NaN, a problem to report once.
def _spelled(word):
    escaped = '"' + "".join(f"\\u{ord(char):04x}" for char in word) + '"'
    return st.sampled_from([json.dumps(word, ensure_ascii=False), json.dumps(word), escaped])


KEY_TEXT = st.sampled_from(["a", "a:", "b", 'q"', "\\", "é"]).flatmap(_spelled)
SCALAR_TEXT = st.one_of(
    st.text(alphabet=':"\\aé ', max_size=4).flatmap(_spelled),
    st.integers(-3, 3).map(str),
    st.sampled_from(["true", "null", "0.5", "NaN"]),
)


def _object_text(values):
    pairs = st.lists(st.tuples(KEY_TEXT, values), max_size=4)
    return pairs.map(lambda items: "{" + ", ".join(f"{key}: {value}" for key, value in items) + "}")


def _array_text(values):
    return st.lists(values, max_size=3).map(lambda items: f"[{', '.join(items)}]")


VALUE_TEXT = st.recursive(
    SCALAR_TEXT, lambda children: _object_text(children) | _array_text(children), max_leaves=10
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_object_text(VALUE_TEXT), max_size=3))
def test_a_key_written_twice_in_a_streamed_flag_is_reported_as_in_a_whole_document(flag_texts):
    # The flags are decoded without the key hook and checked (flag_document._kept_every_key): the
    # same values, and the same problems, as the whole document decoded with it.
    text = '{"flags": [' + ", ".join(flag_texts) + '], "segments": []}'

    def parsed(on_flag):
        handed = []
        try:
            rest = parse_flag_document(text, "flags.json", on_flag=handed.append if on_flag else None)
        except FlagSetError as error:
            return sorted(str(problem) for problem in error.problems)
        return handed or rest["flags"]

    assert parsed(on_flag=True) == parsed(on_flag=False)


def test_the_memo_of_repeated_parts_gives_up_on_a_document_that_does_not_repeat():
    from sidecar.engine.compiler import FlagSetReader

    for distinct, kept in ((True, False), (False, True)):
        reader = FlagSetReader("flags.json")
        rest = parse_flag_document(
            json.dumps(flagsets.flag_document(1_500, distinct=distinct)), "flags.json", on_flag=reader.flag
        )
        memos = reader._reader.read_rules.values()
        assert [memo.on for memo in memos] == [kept], distinct
        assert all(bool(memo.entries) == kept for memo in memos)
        assert len(reader.compile(rest).flags) == 1_500


FREEZE_PROBE = """
import gc, json, weakref
from bench import flagsets
from sidecar.sources import JSON, Document
from sidecar.store.loading import compile_document

class Garbage:
    pass

text = json.dumps(flagsets.flag_document(30)).encode()
cycle = Garbage()
cycle.itself = cycle  # only the collector can free it
probe = weakref.ref(cycle)
first = compile_document(Document(text, JSON, "r1", "flags.json"))
del cycle
gc.collect()
frozen = gc.get_freeze_count() > 0 and probe() is not None  # out of the collector's sight
second = compile_document(Document(text, JSON, "r2", "flags.json"))
gc.collect()
print(frozen, gc.get_freeze_count(), probe() is None)
"""


def test_the_first_load_freezes_what_start_up_built_and_a_later_one_lets_it_go():
    # The start-up set and the imports are left out of the collector's passes (loading._gc_paused),
    # until a later load: then what the set it replaces leaves behind is collectable again.
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", FREEZE_PROBE], cwd=REPO, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["True", "0", "True"]
