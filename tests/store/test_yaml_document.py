"""The event-built YAML document is exactly what PyYAML's safe loader gives, or raises what it raises."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench import flagsets
from sidecar.engine import FlagSetError
from sidecar.store import parse_flag_document
from sidecar.store.yaml_document import _EventLoader, _Unsupported, load_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def reference(text: str) -> Any:
    """The loading this module replaces: libyaml's node-graph loader, the pure-Python one for errors."""
    if hasattr(yaml, "CSafeLoader"):
        try:
            return yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def libyaml(text: str) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)


def shape(value: Any, seen: dict[int, int] | None = None) -> Any:
    """`value` made comparable exactly: types (1, 1.0 and True differ), key order, NaN, and which
    collections are the same object (an alias), including a collection inside itself."""
    seen = {} if seen is None else seen
    if isinstance(value, dict | list):
        if id(value) in seen:
            return ("same as", seen[id(value)])
        seen[id(value)] = len(seen)
        if isinstance(value, dict):
            return ("dict", tuple((shape(k, seen), shape(v, seen)) for k, v in value.items()))
        return ("list", tuple(shape(item, seen) for item in value))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    if isinstance(value, set):
        return ("set", tuple(sorted((shape(item, seen) for item in value), key=repr)))
    if isinstance(value, tuple):
        return ("tuple", tuple(shape(item, seen) for item in value))
    return (type(value).__name__, repr(value))


def outcome(load: Any, text: str) -> Any:
    try:
        return shape(load(text))
    except Exception as error:
        return ("raises", type(error).__name__, str(error))


def assert_same_as_pyyaml(text: str) -> None:
    assert outcome(load_yaml, text) == outcome(reference, text)
    assert outcome(load_yaml, text) == outcome(yaml.safe_load, text) or _parsers_differ(text)


def _parsers_differ(text: str) -> bool:
    """libyaml and PyYAML's pure-Python parser read a few odd texts differently (not our concern:
    the sidecar has always used libyaml's reading)."""
    return outcome(reference, text) != outcome(yaml.safe_load, text)


def events_outcome(text: str) -> Any:
    """The event loader alone (no hand-over to PyYAML's loader); "unsupported" if it hands over."""
    try:
        return shape(_EventLoader(text).document())
    except _Unsupported:
        return "unsupported"
    except Exception:
        return "raises"


# ---------------------------------------------------------------- generated documents

# Plain scalars of every implicit kind; odd ones (invalid numbers and dates raise in safe_load).
PLAIN = [
    *("0", "-0", "+12", "017", "0o17", "0x1F", "-0x_1", "0b101", "1_000", "1:30", "-190:20:30"),
    *("1.5", ".5", "-1.", "1e3", "1.0e+3", "6.8523015e+5", "190:20:30.15", ".inf", "-.Inf", ".NaN", "1_0.5"),
    *("~", "null", "Null", "NULL", "yes", "No", "on", "OFF", "true", "False", "y", "n", ""),
    *("2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "2002-1-2 1:2:3"),
    *("foo", "foo bar", "on-call", "@example.com", "10.0.0.0/8", "ONE_OF", "a:b", "-x", "?x", "a#b"),
]
ODD = ["0x_", "0b_", "2001-13-45", "<<", "=", "!", "*", "&", "a: b", "- x", "#", "'", '"', "---"]
TAGS = ["!!str", "!"]
ODD_TAGS = ["!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!!merge", "!!value"]
ODD_TAGS += ["!!map", "!!seq", "!!set", "!!omap", "!!pairs", "!custom"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=6)
WORDS = st.text("abcxyz019 -_.:", min_size=1, max_size=6)


def sometimes(strategy: st.SearchStrategy, rarely: st.SearchStrategy, weight: int) -> st.SearchStrategy:
    """`strategy` mostly, `rarely` about once in `weight` draws."""
    return st.integers(1, weight).flatmap(lambda n: rarely if n == 1 else strategy)


def scalars(odd: bool) -> st.SearchStrategy:
    """(scalar, text, style, tag): plain scalars of every implicit kind, quoted text; with `odd`,
    texts and tags that PyYAML rejects or reads only through its node graph."""
    texts = st.one_of(st.sampled_from(PLAIN), WORDS)
    tags = st.sampled_from(TAGS)
    if odd:
        texts = sometimes(texts, st.one_of(st.sampled_from(ODD), TEXT), 4)
        tags = sometimes(tags, st.sampled_from(ODD_TAGS), 2)
    return st.tuples(
        st.just("scalar"),
        texts,
        st.sampled_from(["plain", "plain", "plain", "single", "double"]),
        sometimes(st.none(), tags, 8),
    )


def trees(odd: bool) -> st.SearchStrategy:
    """A document's tree: ("seq", items, flow?, tag), ("map", entries, flow?, tag), scalars and
    "alias"; a ("<<", source) entry is a merge key (source: "alias", a list of them, a node)."""

    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        keys = sometimes(scalars(odd), children, 15)
        merge_source = st.one_of(st.just("alias"), st.lists(st.just("alias"), max_size=3), children)
        entry = sometimes(st.tuples(keys, children), st.tuples(st.just("<<"), merge_source), 4)
        tag = st.none()
        if odd:
            tag = sometimes(st.none(), st.sampled_from(["!!map", "!!seq", "!", *ODD_TAGS]), 6)
        return st.one_of(
            st.tuples(st.just("seq"), st.lists(children, max_size=5), st.booleans(), tag),
            st.tuples(st.just("map"), st.lists(entry, max_size=5), st.booleans(), tag),
            st.tuples(st.just("map"), st.lists(entry, max_size=5), st.booleans(), tag),
        )

    return st.recursive(sometimes(scalars(odd), st.just("alias"), 4), extend, max_leaves=30)


class Renderer:
    """Writes a tree as YAML text in block or flow style, with anchors on some nodes and aliases to
    anchors defined before them; `odd` documents also alias open collections (recursion),
    undefined anchors, define an anchor twice, and merge what is not a mapping."""

    def __init__(self, draw: st.DrawFn, odd: bool) -> None:
        self.draw = draw
        self.odd = odd
        self.anchors: dict[str, str] = {}  # name -> "map", "seq", "scalar" or "open"

    def rarely(self, weight: int) -> bool:
        return self.draw(st.integers(1, weight)) == 1

    def props(self, tag: str | None, kind: str) -> tuple[str, str | None]:
        """The text of a node's anchor and tag, and its anchor's name (None if it has none)."""
        parts, name = [], None
        if self.rarely(3):
            name = f"a{len(self.anchors)}"
            if self.odd and self.anchors and self.rarely(10):
                name = self.draw(st.sampled_from(sorted(self.anchors)))  # a duplicate anchor
            self.anchors[name] = "open" if kind != "scalar" else "scalar"
            parts.append(f"&{name}")
        if tag:
            parts.append(tag)
        return " ".join(parts), name

    def close(self, name: str | None, kind: str) -> None:
        if name is not None:
            self.anchors[name] = kind

    def alias(self, kind: str | None = None) -> str | None:
        """An alias to an anchor of `kind` (any complete node if None), or None if there is none."""
        if self.odd and self.rarely(4):
            return "*" + self.draw(st.sampled_from([*sorted(self.anchors), "undefined"]))
        names = sorted(
            name for name, k in self.anchors.items() if k == kind or (kind is None and k != "open")
        )
        return "*" + self.draw(st.sampled_from(names)) if names else None

    def scalar(self, node: tuple, flow: bool) -> str:
        _, text, style, tag = node
        props, _ = self.props(tag, "scalar")
        if style == "double" or (style == "plain" and flow and any(c in text for c in ",[]{}#:\n")):
            body = json.dumps(text)
        elif style == "single" and "\n" not in text:
            body = "'" + text.replace("'", "''") + "'"
        else:
            body = text
        return f"{props} {body}" if props else body

    def inline(self, node: Any) -> str:
        """`node` in flow style (inside [] or {}, or as a key)."""
        if node == "alias":
            return self.alias() or "~"
        if node[0] == "scalar":
            return self.scalar(node, flow=True)
        props, name = self.props(node[3], node[0])
        prefix = f"{props} " if props else ""
        if node[0] == "seq":
            text = prefix + "[" + ", ".join(self.inline(item) for item in node[1]) + "]"
        else:
            entries = ", ".join(
                self.entry(key, value, lambda v: " " + self.inline(v)) for key, value in node[1]
            )
            text = prefix + "{" + entries + "}"
        self.close(name, node[0])
        return text

    def entry(self, key: Any, value: Any, render: Any) -> str:
        if key != "<<":
            return f"{self.inline(key)}:{render(value)}"
        if value == "alias" or isinstance(value, list):
            aliases = [self.alias("map") for _ in (value if isinstance(value, list) else [value])]
            sources = [alias or "{m: 0}" for alias in aliases]  # no mapping to alias yet: an inline one
            return "<<: " + ("[" + ", ".join(sources) + "]" if isinstance(value, list) else sources[0])
        if value[0] != "map" and not self.odd:
            value = ("map", [], True, None)
        return f"<<:{render(value)}"

    def block(self, node: Any, indent: int) -> str:
        """`node` as the value after `key:` or `-` (starting on that line) at `indent`."""
        if node == "alias" or node[0] == "scalar" or node[2] or not node[1]:
            return " " + self.inline(node)
        props, name = self.props(node[3], node[0])
        pad = " " * indent
        lines = [f" {props}" if props else ""]
        if node[0] == "seq":
            lines += [f"{pad}-{self.block(item, indent + 2)}" for item in node[1]]
        else:
            lines += [
                pad + self.entry(key, value, lambda v: self.block(v, indent + 2)) for key, value in node[1]
            ]
        self.close(name, node[0])
        return "\n".join(lines)


@st.composite
def documents(draw: st.DrawFn) -> str:
    odd = draw(st.integers(1, 4)) == 1
    renderer = Renderer(draw, odd)
    text = renderer.block(draw(trees(odd)), 0)
    text = "---" + text if draw(st.booleans()) else text.lstrip()
    endings = ["", "\n", "\n...\n", "\n# comment\n"]
    return text + draw(st.sampled_from([*endings, "\n--- two\n"] if odd else endings))


MERGES = """\
base: &base {a: 1, b: 2, <<: {z: 0, a: -1}}
more: &more {b: 20, c: 30}
one: {<<: *base, c: 3}
list: {c: 3, <<: [*more, *base], d: 4}
own-first: {a: own, <<: *base}
twice: {<<: *base, <<: *more}
inline: {<<: [{x: 1}, {x: 2, y: 2}]}
nested: {<<: {<<: *more, e: 5}}
"""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents())
@example(text=MERGES)
def test_generated_documents_load_as_pyyaml_loads_them(text):
    assert_same_as_pyyaml(text)
    # The event loader alone: the same document, a raise where PyYAML raises, or a hand-over.
    alone = events_outcome(text)
    expected = outcome(libyaml, text)
    if alone == "raises":
        assert expected[0] == "raises"
    elif alone != "unsupported":
        assert alone == expected


# ---------------------------------------------------------------- explicit cases


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "---\n...\n",
        "42",
        "a: 1\na: 2\nb: 3\n",  # a later duplicate key wins, in the first one's place
        "{.nan: 1, .nan: 2}",  # two NaN keys stay two entries
        "[&a [1, 2], *a, *a]",  # aliases are the same object
        "a: &x yes\nb: *x\nc: 'yes'\nd: !!str yes\ne: ! 12\nf: !!int '12'\ng: !!float 1\n",
        "t: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\nb: !!binary aGVsbG8=\n",
        "n: ~\nm: null\no: \nq: !!null ''\n",
        "? [1, 2]\n: unhashable key\n",
        "? {a: 1}\n: unhashable key\n",
        "a: *nowhere\n",
        "a: &x 1\nb: &x 2\n",  # a duplicate anchor
        "a: 1\n---\nb: 2\n",  # two documents
        "a: [1, 2\n",
        "a: b: c\n",
        "\tkey: tab\n",
        "x: 0x_\n",  # the resolver says int, int() says no: a ValueError, as in safe_load
        "x: !!bool maybe\n",
        "x: !custom 1\n",
        "x: !!set {a, b}\n",
        "x: !!omap [{a: 1}, {b: 2}]\n",
        "x: !!pairs [{a: 1}, {a: 2}]\n",
        "&r [*r]\n",  # a list inside itself
        "&r {self: *r}\n",
        "&r {<<: *r, a: 1}\n",
        "{=: 1}\n",
        "a: =\n",
        "<<: {a: 1}\n",
        "a: <<\n",
        "{<<: [{a: 1}, 2]}\n",
        "{<<: 1}\n",
        "{<<: !foo {a: 1}}\n",
        "{!!merge x: {a: 1}, b: 2}\n",
        "{'<<': {a: 1}}\n",  # quoted: a plain key, not a merge
        "%YAML 1.1\n---\na: 1\n",
        "%TAG !e! tag:yaml.org,2002:\n---\na: !e!int '7'\n",
        "a: |\n  literal\n  text\nb: >\n  folded\n  text\n",
        "- - - deep\n",
        "[" * 200 + "]" * 200,
        MERGES,
    ],
)
def test_documents(text):
    assert_same_as_pyyaml(text)


@pytest.mark.parametrize(
    "text",
    ["a: 1\nb: [x, 'y', 2.5, ~, on]\nc: {d: &d {e: 1}, f: *d, g: {<<: *d, h: 2}}\n", MERGES],
)
def test_ordinary_documents_take_the_event_path(text):
    assert events_outcome(text) == outcome(libyaml, text)


def test_equal_strings_are_one_object():
    document = load_yaml("- {key: plan, value: pro}\n- {key: 'plan', value: \"pro\"}\n")
    assert document[0]["key"] is document[1]["key"]
    assert document[0]["value"] is document[1]["value"]


def test_the_bench_flag_file_and_the_examples(tmp_path):
    path = flagsets.write_flag_file(tmp_path, 100)
    for text in [path.read_text(), *(p.read_text() for p in sorted(EXAMPLES.glob("*.y*ml")))]:
        assert events_outcome(text) == outcome(libyaml, text)
        assert_same_as_pyyaml(text)


def test_without_libyaml_the_pure_python_parser_gives_the_events():
    methods = {name: vars(_EventLoader)[name] for name in ("document", "_node", "_scalar", "_anchor")}
    pure = type("PureEventLoader", (yaml.SafeLoader,), methods)
    text = MERGES + "t: 2001-12-14\nl: [1, 'x', ~, .nan]\n"
    assert shape(pure(text).document()) == shape(yaml.safe_load(text))


def test_a_syntax_error_is_reported_with_the_pure_python_wording():
    text = "flags:\n  - key: a\n    enabled: [true\n"
    with pytest.raises(yaml.MarkedYAMLError) as pure:
        yaml.safe_load(text)
    with pytest.raises(FlagSetError) as raised:
        parse_flag_document(text, "flags.yaml")
    mark = pure.value.problem_mark
    assert mark is not None
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    assert raised.value.problems[0].message == f"not valid YAML at {where}: {pure.value.problem}"
