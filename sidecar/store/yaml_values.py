"""YAML read into JSON values straight from libyaml's events, by the flag file's rules.

Why not `yaml.safe_load`: PyYAML composes a node graph of the whole document (a node and two marks
per scalar, several times the document) before it builds a value, and the memory it frees stays
with the process: at 10,000 flags, several times the RSS of values built from the events, and a
slower start (BENCHMARKS.md, "Reading YAML"). Its constructor also decides things a flag file must decide
itself: it keeps the last of two equal keys silently, reads dates and `!!binary` as values no
client can be sent, and PyYAML 6.0.4 reads a merged alias differently from its anchor. So the
parsing is libyaml's (PyYAML's pure-Python parser where libyaml is missing, and for wording syntax
errors), the scalar resolution is PyYAML's YAML 1.1 resolver and safe scalar constructors, and the
values are built here, with these rules:

- JSON values only: a date, `!!binary`, `!!set`, `!!omap` or any other tag is a problem;
- mapping keys are strings, each at most once per mapping;
- `<<` merges (the YAML merge-key spec, on values): an alias reads as its anchor after the
  anchor's own merges; the mapping's own keys win; in `<<: [*a, *b]` the earlier mapping wins;
- an alias to a collection that contains it (a recursive value) is a problem;
- at most `max_depth` open collections (the walk in flag_document bounds aliases' expansion).

Equal strings share one object: a flag file repeats the same keys and values thousands of times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _TAG + "str", _TAG + "map", _TAG + "seq"
_MERGE_TAG, _VALUE_TAG = _TAG + "merge", _TAG + "value"
# Tags PyYAML's safe constructor builds into JSON values from the scalar alone.
_JSON_SCALAR_TAGS = frozenset(_TAG + name for name in ("null", "bool", "int", "float"))
NOT_JSON_TAGS = {
    _TAG + "timestamp": "a date or time, which JSON has no type for: quote it",
    _TAG + "binary": "!!binary data, which JSON has no type for: write it as a string",
    _TAG + "set": "a !!set, which JSON has no type for: write a list",
    _TAG + "omap": "an !!omap, which JSON has no type for: write a mapping",
    _TAG + "pairs": "!!pairs, which JSON has no type for: write a mapping",
}
# Plain scalars whose value may be shared between equal texts (not floats: NaN is not NaN).
_SHAREABLE = (str, int, bool, type(None))
_MISSING: Any = object()
_SKIP: Any = object()  # a key that was refused: its value is read and dropped
_OPEN: Any = object()  # an anchored collection still being built
_MERGE: Any = object()  # the key `<<`

FlagSink = Callable[[Any], None]


class _Abort(Exception):
    """Reading cannot usefully go on (nesting too deep); the problem has been recorded."""


def _where(event: Any) -> str:
    mark = event.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _shown(key: Any, limit: int = 80) -> str:
    text = repr(key)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean (YAML reads unquoted on/off/yes/no as booleans)"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return f"a {'mapping' if isinstance(value, dict) else 'list' if isinstance(value, list) else 'value'}"


class _Frame:
    """One open collection: its container, its anchor, and for a mapping the pending key and the
    `<<` sources."""

    __slots__ = ("anchor", "container", "key", "mapping", "merges")

    def __init__(self, mapping: bool, anchor: str | None) -> None:
        self.mapping = mapping
        self.container: Any = {} if mapping else []
        self.anchor = anchor
        self.key: Any = _MISSING
        self.merges: list[dict[str, Any]] | None = None


class _Reader:
    """Builds the document from the events of `loader` (a PyYAML loader: parser and resolver)."""

    def __init__(
        self, loader: Any, problem: Callable[[str], None], max_depth: int, on_flag: FlagSink | None = None
    ) -> None:
        self.loader = loader
        self.problem = problem
        self.max_depth = max_depth
        self.on_flag = on_flag

    def document(self) -> Any:
        get_event = self.loader.get_event
        get_event()  # StreamStartEvent
        if isinstance(get_event(), StreamEndEvent):  # or the DocumentStartEvent
            return None
        try:
            root = self._value()
        except _Abort:
            return None
        get_event()  # DocumentEndEvent
        event = get_event()
        if not isinstance(event, StreamEndEvent):
            self.problem(f"{_where(event)}: a flag file holds one YAML document, and another starts here")
        return root

    def _value(self) -> Any:
        """The next value (and everything under it), without recursion."""
        loader, problem, on_flag = self.loader, self.problem, self.on_flag
        get_event, resolve = loader.get_event, loader.resolve
        anchors: dict[str, Any] = {}
        strings: dict[str, str] = {}
        plain: dict[str, Any] = {}  # plain scalar text -> its shareable value
        stack: list[_Frame] = []
        while True:
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent:
                tag, text = event.tag, event.value
                if (tag is None or tag == "!") and event.implicit[0]:
                    value = plain.get(text, _MISSING)
                    if value is _MISSING:
                        value = self._scalar(resolve(ScalarNode, text, event.implicit), event, strings)
                        if type(value) in _SHAREABLE:
                            plain[text] = value
                elif tag is None or tag == "!" or tag == _STR:
                    value = strings.setdefault(text, text)
                else:
                    value = self._scalar(tag, event, strings)
                if event.anchor is not None:
                    anchors[event.anchor] = value
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                mapping = kind is MappingStartEvent
                tag = event.tag
                if tag is not None and tag != "!" and tag != (_MAP if mapping else _SEQ):
                    problem(f"{_where(event)}: {_tag_problem(tag)}")
                if len(stack) >= self.max_depth:
                    problem(f"{_where(event)}: nested more than {self.max_depth} levels deep")
                    raise _Abort
                if event.anchor is not None:
                    anchors[event.anchor] = _OPEN
                stack.append(_Frame(mapping, event.anchor))
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = stack.pop()
                value = frame.container
                if frame.merges is not None:
                    merged: dict[str, Any] = {}
                    for source in frame.merges:
                        for key, item in source.items():
                            merged.setdefault(key, item)  # the earlier source wins
                    merged.update(value)  # and the mapping's own keys win over all
                    value = merged
                if frame.anchor is not None:
                    anchors[frame.anchor] = value
            elif kind is AliasEvent:
                value = anchors.get(event.anchor, _MISSING)
                if value is _MISSING:
                    problem(f"{_where(event)}: alias *{event.anchor} names no anchor before it")
                    value = None
                elif value is _OPEN:
                    problem(f"{_where(event)}: alias *{event.anchor} is inside its own anchor (recursive)")
                    value = None
            else:
                raise yaml.composer.ComposerError(None, None, f"unexpected {kind.__name__}", event.start_mark)

            # `value` is complete: the document, an item, a key or a value.
            if not stack:
                return self._not_merge(value, event)
            frame = stack[-1]
            if not frame.mapping:
                if (
                    on_flag is not None
                    and len(stack) == 2
                    and frame.anchor is None
                    and stack[0].key == "flags"
                ):
                    on_flag(self._not_merge(value, event))  # an item of the top-level `flags` list
                    continue
                frame.container.append(self._not_merge(value, event))
            elif frame.key is _MISSING:
                frame.key = self._key(value, event, frame)
            else:
                key, frame.key = frame.key, _MISSING
                if key is _MERGE:
                    self._merge(value, event, frame)
                elif key is not _SKIP:
                    frame.container[key] = self._not_merge(value, event)

    def _key(self, key: Any, event: Any, frame: _Frame) -> Any:
        if key is _MERGE:
            return key
        if type(key) is not str:
            shown = f"mapping key {_shown(key)} is {_kind(key)}"
            self.problem(f"{_where(event)}: {shown}, not a string: quote it")
            return _SKIP
        if key in frame.container:
            self.problem(f"{_where(event)}: key {_shown(key)} appears twice in one mapping")
        return key

    def _merge(self, value: Any, event: Any, frame: _Frame) -> None:
        sources = value if type(value) is list else [value]
        if not all(type(source) is dict for source in sources):
            self.problem(f"{_where(event)}: `<<` merges a mapping or a list of mappings, nothing else")
            return
        if frame.merges is None:
            frame.merges = []
        frame.merges.extend(sources)

    def _not_merge(self, value: Any, event: Any) -> Any:
        if value is _MERGE:
            self.problem(f"{_where(event)}: `<<` stands only as a mapping key (quote it for the text)")
            return None
        return value

    def _scalar(self, tag: str, event: Any, strings: dict[str, str]) -> Any:
        text = event.value
        if tag in (_STR, _VALUE_TAG):  # `=`: YAML 1.1's "default value" key, read as text
            return strings.setdefault(text, text)
        if tag in _JSON_SCALAR_TAGS:
            node = ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
            try:
                return self.loader.yaml_constructors[tag](self.loader, node)
            except ValueError:  # an integer longer than int() takes
                self.problem(f"{_where(event)}: a number of {len(text)} characters is out of range")
                return None
        if tag == _MERGE_TAG:
            return _MERGE
        self.problem(f"{_where(event)}: {_tag_problem(tag)}")
        return None


def _tag_problem(tag: str) -> str:
    return NOT_JSON_TAGS.get(tag, f"tag {tag!r}, which a flag file does not support")


# libyaml's parser when PyYAML was built with it (several times faster); the same events.
_FAST: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_values(
    text: str, problem: Callable[[str], None], max_depth: int, on_flag: FlagSink | None = None
) -> Any:
    """The document's value (None when empty), every problem passed to `problem`. With `on_flag`,
    each item of the top-level `flags` list goes to it as soon as it is read, not into the value."""
    found: list[str] = []
    loader = _FAST(text)
    try:
        document = _Reader(loader, found.append, max_depth, on_flag).document()
    except yaml.YAMLError as raised:
        error = raised
    else:
        for message in found:
            problem(message)
        return document
    finally:
        loader.dispose()
    if _FAST is not yaml.SafeLoader:
        # A syntax error is read again by PyYAML's pure-Python parser, which words it more clearly
        # (only for its words: the flags already handed to `on_flag` are not handed over again).
        # It may also stop at a problem of ours first (nesting past max_depth, before libyaml's
        # own limit): then that problem is the one reported.
        found = []
        loader = yaml.SafeLoader(text)
        try:
            _Reader(loader, found.append, max_depth).document()
        except yaml.YAMLError as raised:
            error = raised
        finally:
            loader.dispose()
        if found:
            for message in found:
                problem(message)
            return None
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem(f"not valid YAML{where}: {getattr(error, 'problem', None) or error}")
    return None
