"""A YAML document built straight from the parser's events: what `yaml.safe_load` gives, less memory.

PyYAML's loaders compose a node graph of the whole document (a node and two marks per scalar) and
only then construct the Python objects; the graph is about six times the size of the document, and
the memory it frees stays with the process (pymalloc keeps an arena as long as one object in it
survives). Here the objects are built as libyaml's events arrive, so the peak is the document.

Same results by construction: the same parser (libyaml's, through PyYAML), PyYAML's own resolver
for implicit tags and SafeConstructor's scalar constructors (int, float, bool, null, timestamp,
binary), the composer's checks (undefined aliases, duplicate anchors, a single document) and the
safe constructor's mapping rules (later duplicate keys win, unhashable keys rejected, merge keys
`<<` flattened as `flatten_mapping` does). The few constructs whose safe_load result depends on
the node graph itself (an alias into a collection that is still open, an anchored `<<` or `=`, `<<`
or `=` anywhere but as a key, explicit tags other than the scalar ones, `!!map` and `!!seq`) are
handed to PyYAML's loader, as is any error: then the caller gets exactly what the node-graph loader
gives, from the node-graph loader.

Equal strings share one object (a dictionary of the strings seen during the load), which makes the
document smaller still: a flag file repeats the same keys and values thousands of times.
"""

from __future__ import annotations

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
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

# libyaml's parser when PyYAML was built with it (faster: BENCHMARKS.md), else PyYAML's own:
# the same events.
_LIBYAML: Any = getattr(yaml, "CSafeLoader", None)
_BASE: Any = _LIBYAML or yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
STR_TAG, SEQ_TAG, MAP_TAG = _TAG + "str", _TAG + "seq", _TAG + "map"
MERGE_TAG, VALUE_TAG = _TAG + "merge", _TAG + "value"
# Tags SafeConstructor builds from a scalar node alone, with no state (see construct_scalar below).
SCALAR_TAGS = frozenset(_TAG + name for name in ("null", "bool", "int", "float", "binary", "timestamp"))
# Plain scalars whose constructed value may be shared between equal texts. Not floats: two NaN keys
# are two entries of a safe_load mapping, and one shared NaN object would make them one.
_SHAREABLE = (str, int, bool, type(None))
_MISSING: Any = object()
_OPEN: Any = object()  # an anchored collection still being built
_MERGE: Any = object()  # the key `<<`


class _Unsupported(Exception):
    """A construct left to PyYAML's loader (its result depends on the node graph)."""


class _Equals:
    """A scalar tagged `tag:yaml.org,2002:value` (`=`): a string as a mapping key, else unsupported."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _EventLoader(_BASE):
    """The parser, resolver and constructor of PyYAML's safe loader, driven event by event."""

    def document(self) -> Any:
        """The stream's single document (None when empty); raises as described in the module."""
        if self.yaml_path_resolvers:
            raise _Unsupported("path resolvers")
        get_event = self.get_event
        get_event()  # StreamStartEvent
        if isinstance(get_event(), StreamEndEvent):
            return None
        root = self._node()  # the DocumentStartEvent has been consumed
        get_event()  # DocumentEndEvent
        event = get_event()
        if not isinstance(event, StreamEndEvent):
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                None,
                "but found another document",
                event.start_mark,
            )
        return root

    def _node(self) -> Any:
        """Build one node (and everything under it) from the events, without recursion."""
        get_event = self.get_event
        resolve = self.resolve
        anchors: dict[str, Any] = {}
        strings: dict[str, str] = {}  # equal texts share one str object
        plain: dict[str, Any] = {}  # plain scalar text -> its (shareable) constructed value
        quoted_tag = resolve(ScalarNode, "", (False, True))  # the same for every non-plain scalar
        # A frame is [mapping?, container, anchor, pending key, merge sources, start mark].
        stack: list[list[Any]] = []
        while True:
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent:
                tag, text = event.tag, event.value
                if tag is None or tag == "!":
                    if event.implicit[0]:
                        value = plain.get(text, _MISSING)
                        if value is _MISSING:
                            tag = resolve(ScalarNode, text, event.implicit)
                            value = self._scalar(tag, event, strings)
                            if type(value) in _SHAREABLE:
                                plain[text] = value
                    elif quoted_tag == STR_TAG:
                        value = strings.setdefault(text, text)
                    else:
                        value = self._scalar(quoted_tag, event, strings)
                else:
                    value = self._scalar(tag, event, strings)
                if event.anchor is not None:
                    if value is _MERGE or type(value) is _Equals:
                        raise _Unsupported("an anchored `<<` or `=`")
                    self._anchor(anchors, event)
                    anchors[event.anchor] = value
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                node_kind = MappingNode if kind is MappingStartEvent else SequenceNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolve(node_kind, None, event.implicit)
                if tag != (MAP_TAG if node_kind is MappingNode else SEQ_TAG):
                    raise _Unsupported(f"a collection tagged {tag}")
                if event.anchor is not None:
                    self._anchor(anchors, event)
                    anchors[event.anchor] = _OPEN
                is_mapping = node_kind is MappingNode
                stack.append(
                    [is_mapping, {} if is_mapping else [], event.anchor, _MISSING, None, event.start_mark]
                )
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                _, value, anchor, _, merges, _ = stack.pop()
                if merges is not None:
                    value = _merged(merges, value, event)
                if anchor is not None:
                    anchors[anchor] = value
            elif kind is AliasEvent:
                value = anchors.get(event.anchor, _MISSING)
                if value is _MISSING:
                    raise yaml.composer.ComposerError(
                        None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                    )
                if value is _OPEN:
                    raise _Unsupported("an alias into its own collection")
            else:
                raise yaml.composer.ComposerError(None, None, f"unexpected {kind.__name__}", event.start_mark)

            # `value` is complete: it is the document, an item, a key or a value.
            if not stack:
                if value is _MERGE or type(value) is _Equals:
                    raise _Unsupported("`<<` or `=` as a value")
                return value
            frame = stack[-1]
            if not frame[0]:
                if value is _MERGE or type(value) is _Equals:
                    raise _Unsupported("`<<` or `=` as a value")
                frame[1].append(value)
            elif frame[3] is _MISSING:  # a key
                if type(value) is _Equals:
                    value = value.text  # flatten_mapping retags `=` keys as strings
                elif type(value) is list or type(value) is dict:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", frame[5], "found unhashable key", event.start_mark
                    )
                frame[3] = value
            else:
                key, frame[3] = frame[3], _MISSING
                if value is _MERGE or type(value) is _Equals:
                    raise _Unsupported("`<<` or `=` as a value")
                if key is _MERGE:
                    if frame[4] is None:
                        frame[4] = []
                    frame[4].append(value)
                else:
                    frame[1][key] = value

    def _scalar(self, tag: str, event: Any, strings: dict[str, str]) -> Any:
        text = event.value
        if tag == STR_TAG:
            return strings.setdefault(text, text)
        if tag in SCALAR_TAGS:
            node = ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
            return self.yaml_constructors[tag](self, node)
        if tag == MERGE_TAG:
            return _MERGE
        if tag == VALUE_TAG:
            return _Equals(strings.setdefault(text, text))
        raise _Unsupported(f"a scalar tagged {tag}")

    @staticmethod
    def _anchor(anchors: dict[str, Any], event: Any) -> None:
        if event.anchor in anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {event.anchor!r}", None, "second occurrence", event.start_mark
            )


def _merged(sources: list[Any], own: dict[Any, Any], event: Any) -> dict[Any, Any]:
    """A mapping with merge keys, as SafeConstructor.flatten_mapping builds it.

    The merged entries come first, in the order of the `<<` keys (a list of mappings in reverse,
    so that its first mapping wins), then the mapping's own entries, which win over all of them.
    A source's items stand for its node's flattened pairs: applying either gives the same mapping.
    """
    merged: dict[Any, Any] = {}
    for source in sources:
        if type(source) is dict:
            merged.update(source)
        elif type(source) is list and all(type(item) is dict for item in source):
            for item in reversed(source):
                merged.update(item)
        else:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                None,
                "expected a mapping or list of mappings for merging",
                event.start_mark,
            )
    merged.update(own)
    return merged


def _node_graph_load(text: str) -> Any:
    """PyYAML's own loading (the node graph), and the pure-Python parser's wording for errors."""
    if _LIBYAML is not None:
        try:
            return yaml.load(text, Loader=_LIBYAML)  # CSafeLoader: a safe loader
        except yaml.YAMLError:
            pass  # parsed again below: the pure-Python parser words its errors more clearly
    return yaml.safe_load(text)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load(text)` (libyaml's parser when available), built without the node graph.

    Raises what PyYAML raises; a YAMLError carries the pure-Python parser's message and marks.
    """
    try:
        return _EventLoader(text).document()
    except (yaml.parser.ParserError, yaml.scanner.ScannerError, yaml.reader.ReaderError):
        # The node-graph loader stops at the same place (it reads every event before constructing).
        return yaml.safe_load(text)
    except Exception:  # _Unsupported, or an error the node-graph loader words itself
        return _node_graph_load(text)
