"""A flag document (YAML or JSON) parsed into plain JSON values, refusing what cannot be served.

YAML is read by yaml_values (libyaml's events), JSON by the json module. Either way the flag
file's own rules hold, so that a document which parses also serves:

- only JSON values: strings, finite numbers, booleans, null, lists, and mappings with string keys.
  A YAML date, `!!binary`, `!!set` or any other tag, NaN or Infinity, a lone surrogate, or an
  integer beyond +-2^53 (protobuf and JavaScript clients would round it) is a problem, located;
- a key written twice in one mapping is a problem (YAML and JSON both let the last one win
  silently);
- YAML merge keys (`<<`) work on values: an alias always reads as its anchor (see yaml_values);
- bounded: at most `max_values` values after expanding aliases (an alias bomb is refused, not
  built), and at most `max_depth` levels of nesting.

Every problem found is reported at once, as a FlagSetError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..engine import FlagSetError, Problem

if TYPE_CHECKING:
    from .yaml_values import FlagSink

MAX_SAFE_INTEGER = 2**53
# An item of the top-level flags list, and where its text starts and ends (JSON).
SpanSink = Callable[[Any, int, int], None]
NumberHooks = tuple[Callable[[str], int], Callable[[str], float]]  # JSONDecoder's parse_int, parse_float
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """How large a flag document may grow once parsed (--max-document-values, --max-document-depth)."""

    max_values: int = 1_000_000
    max_depth: int = 64


def parse_flag_document(
    data: bytes | str,
    source: str,
    limits: DocumentLimits | None = None,
    *,
    json_format: bool | None = None,
    on_flag: FlagSink | None = None,
) -> Any:
    """The document's JSON value; a FlagSetError listing every problem otherwise.

    YAML unless `json_format` (by default: unless `source` ends in `.json`). With `on_flag`, each
    item of the top-level `flags` list is checked and handed to it as soon as it is parsed, and
    left out of the value returned (its `flags` is then empty): a large document is never whole in
    memory, so its memory does not stay scattered under the flag set compiled from it. The
    problems are the same either way; when there are any, what `on_flag` was given is to be dropped.
    """
    limits = limits or DocumentLimits()
    if json_format is None:
        json_format = source.lower().endswith(".json")
    problems: list[Problem] = []

    def problem(message: str) -> None:
        problems.append(Problem(message, source=source))

    text = _decoded(data, problem)
    if text is None:
        raise FlagSetError(problems)
    checker = _ValueChecker(text, limits, problem, json_format=json_format)
    sink: FlagSink | None = None
    span_sink: SpanSink | None = None
    if on_flag is not None:
        handed = 0

        def sink(value: Any, openers: int | None = None) -> None:
            nonlocal handed
            if checker.check(value, ((None, "flags"), handed), depth=2, openers=openers):
                on_flag(value)
            handed += 1

        def span_sink(value: Any, start: int, end: int) -> None:
            sink(value, text.count("[", start, end) + text.count("{", start, end))

    try:
        if json_format:
            document = _load_json(text, problem, span_sink, checker.number_hooks())
        else:
            from .yaml_values import load_yaml_values  # PyYAML loads only for YAML documents

            document = load_yaml_values(text, problem, limits.max_depth, sink)
    except RecursionError:  # deeper than the interpreter's stack: far past max_depth
        problem(f"nested more than {limits.max_depth} levels deep")
        raise FlagSetError(problems) from None
    if document is not None:
        checker.check(document, None)
    if problems:
        raise FlagSetError(problems)
    return document


def _decoded(data: bytes | str, problem: Callable[[str], None]) -> str | None:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        problem(f"not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start} (line {line})")
        return None


# ---------------------------------------------------------------- JSON


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, at: int) -> int:
    """The first position at or after `at` that is not JSON whitespace."""
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _load_json(
    text: str,
    problem: Callable[[str], None],
    on_flag: SpanSink | None = None,
    numbers: NumberHooks | None = None,
) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping = dict(items)
        if len(mapping) == len(items):  # no key twice: the common case, without a Python loop
            return mapping
        mapping = {}
        for key, value in items:
            if key in mapping:
                problem(f"key {_shown(key)} appears twice in one object")
            mapping[key] = value
        return mapping

    def constant(name: str) -> float:
        problem(f"{name} is not a JSON number")
        return 0.0

    parse_int, parse_float = numbers or (None, None)
    decoder = json.JSONDecoder(
        object_pairs_hook=pairs, parse_constant=constant, parse_int=parse_int, parse_float=parse_float
    )
    try:
        if on_flag is None:
            return decoder.decode(text)
        # The flags, most of the document, are decoded without the key hook, then checked (_kept_every_key).
        plain = json.JSONDecoder(parse_constant=_doubt, parse_int=parse_int, parse_float=parse_float)
        return _decode_streaming(decoder, text, pairs, on_flag, plain)
    except json.JSONDecodeError as error:
        problem(f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}")
    except ValueError as error:  # an integer too long for int(): Python's own limit
        problem(f"not valid JSON: {error}")
    return None


def _decode_streaming(
    decoder: json.JSONDecoder,
    text: str,
    pairs: Callable[[list[tuple[str, Any]]], dict[str, Any]],
    on_flag: SpanSink,
    plain: json.JSONDecoder,
) -> Any:
    """decoder.decode(text), but the items of a top-level object's `flags` array go to `on_flag` as
    each is decoded. The top level is walked here, every value below it by the decoder; errors are
    the decoder's own (same words, same positions)."""
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return decoder.decode(text)
    items: list[tuple[str, Any]] = []
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        at += 1
    else:
        while True:
            if not text.startswith('"', at):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
            key, at = decoder.raw_decode(text, at)
            at = _skip(text, at)
            if not text.startswith(":", at):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
            at = _skip(text, at + 1)
            if key == "flags" and text.startswith("[", at):
                value: Any = []
                at = _decode_items(decoder, plain, text, at, on_flag)
            else:
                value, at = decoder.raw_decode(text, at)
            items.append((key, value))
            at = _skip(text, at)
            if text.startswith(",", at):
                at = _skip(text, at + 1)
            elif text.startswith("}", at):
                at += 1
                break
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
    end = _skip(text, at)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return pairs(items)


def _decode_items(
    decoder: json.JSONDecoder, plain: json.JSONDecoder, text: str, at: int, on_item: SpanSink
) -> int:
    """Decode the array at `at` item by item into `on_item` (with the span of its text); the
    position after it. Each item is decoded by `plain` (no key hook: the C decoder builds its
    objects itself, in half the time) and, if it may have lost a key written twice, again by
    `decoder`, whose hook reports the key."""
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return at + 1
    while True:
        start = at
        try:
            item, at = plain.raw_decode(text, at)
            kept = _kept_every_key(item, text, start, at)
        except _Doubt:
            kept = False
        if not kept:
            item, at = decoder.raw_decode(text, start)
        on_item(item, start, at)
        at = _skip(text, at)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
        elif text.startswith("]", at):
            return at + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, at)


class _Doubt(Exception):
    """What only the checking decoder reports (NaN, Infinity): decode the item with it."""


def _doubt(name: str) -> float:
    raise _Doubt(name)


def _kept_every_key(value: Any, text: str, start: int, end: int) -> bool:
    """Whether `value`, decoded from text[start:end] by a decoder that lets a key written twice in
    one object keep its last value silently, kept every key the text writes (False: not sure).

    Without a backslash in the text, each `"` in it delimits a string, and the value's strings are
    the text's, written the same way by orjson (which escapes only quotes, backslashes and control
    characters, none of which such a string holds). The text's colons are then one per key written
    plus those inside its strings; orjson's, one per key kept plus those inside the strings kept.
    Numbers, true, false and null hold none. So equal counts mean that no key, and no value, was
    lost: a key written twice makes orjson's count smaller."""
    if text.find("\\", start, end) != -1:
        return False
    try:
        written = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits (orjson.JSONEncodeError is a TypeError)
        return False
    return written.count(b":") == text.count(":", start, end)


# ---------------------------------------------------------------- both


class _ValueChecker:
    """Walks the document as served (aliases expanded) and reports what JSON cannot carry.

    Iterative, with one budget for the whole document: an alias bomb is refused after `max_values`
    values, never expanded. Only containers go on the stack; their scalars are checked in place.
    Text holds a lone surrogate only through an escape (`\\u`, `\\U`) or as a str input that has
    one already: in any other document the strings are not searched.
    """

    def __init__(
        self, text: str, limits: DocumentLimits, problem: Callable[[str], None], *, json_format: bool = False
    ) -> None:
        # One backslash search first: it is a single fast scan, where each two-character search
        # is a slow one, and most documents have no backslash at all.
        escaped = "\\" in text and ("\\u" in text or "\\U" in text)
        self.strings = escaped or (not text.isascii() and bool(_SURROGATE.search(text)))
        self.limits = limits
        self.problem = problem
        self.count = 0
        # JSON text holds only JSON values, each written out once (no aliases): what is left to check
        # is the depth, the numbers (which the decoder hands to number_hooks as it reads them) and
        # lone surrogates, and the budget, which no document of fewer commas and brackets can spend
        # (each value but the first follows a comma or an opening bracket). Then the depth is all:
        # a flag whose text opens fewer brackets than the levels left cannot be too deep, and any
        # other value has only its containers walked. Any doubt (a number out of range, a possible
        # surrogate, too deep) takes the full walk, which locates the problem.
        self.containers_only = (
            json_format
            and not self.strings
            and 1 + text.count(",") + text.count("[") + text.count("{") <= limits.max_values
        )
        self.numbers_in_doubt = False

    def number_hooks(self) -> NumberHooks | None:
        """json.JSONDecoder's parse_int and parse_float, noting a number the full walk must look at."""
        if not self.containers_only:
            return None

        def parse_int(text: str) -> int:
            value = int(text)
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                self.numbers_in_doubt = True
            return value

        def parse_float(text: str) -> float:
            value = float(text)
            if value in _INFINITIES:  # 1e999: NaN is no JSON number, it comes as a constant
                self.numbers_in_doubt = True
            return value

        return parse_int, parse_float

    def check(self, value: Any, path: Any, depth: int = 0, openers: int | None = None) -> bool:
        """Check `value` (at `path`, `depth` levels deep); False once the budget is spent.
        `openers`: how many `[` and `{` its JSON text holds, at most (none nests deeper than that)."""
        limits, problem, strings = self.limits, self.problem, self.strings
        if (
            self.containers_only
            and not self.numbers_in_doubt
            and (
                (openers is not None and depth + openers <= limits.max_depth)
                or not _deeper_than(value, limits.max_depth, depth)
            )
        ):
            return True  # else the full walk, which says where
        if self.count > limits.max_values:
            return False
        self.count += 1
        if type(value) is not dict and type(value) is not list:
            _check_scalar(value, path, strings, problem)
            return True
        # (container, depth, path): a path is (parent path, key) and is only rendered for a problem.
        stack: list[tuple[Any, int, Any]] = [(value, depth, path)]
        while stack:
            container, depth, path = stack.pop()
            if depth >= limits.max_depth:
                problem(f"{_path(path)}: nested more than {limits.max_depth} levels deep")
                continue
            self.count += len(container)
            if self.count > limits.max_values:
                problem(
                    f"the document expands to more than {limits.max_values:,} values (aliases included):"
                    " it is too large to serve"
                )
                return False
            if type(container) is dict:
                if strings and any(_SURROGATE.search(key) for key in container):
                    problem(f"{_path(path)}: a key holds a lone surrogate, which is not text")
                items: Any = container.items()
            else:
                items = enumerate(container)
            for key, item in items:
                kind = type(item)
                if kind is dict or kind is list:
                    stack.append((item, depth + 1, (path, key)))
                elif kind is not str or strings:
                    _check_scalar(item, (path, key), strings, problem)
        return True


_INFINITIES = (float("inf"), float("-inf"))


def _deeper_than(value: Any, max_depth: int, depth: int) -> bool:
    """Whether any container in `value` (at `depth`) lies `max_depth` levels deep or more."""
    if type(value) is not dict and type(value) is not list:
        return False
    stack: list[tuple[Any, int]] = [(value, depth)]
    pop, push = stack.pop, stack.append
    while stack:
        container, level = pop()
        if level >= max_depth:
            return True
        level += 1
        for item in container.values() if type(container) is dict else container:
            if type(item) is dict or type(item) is list:
                push((item, level))
    return False


def _check_scalar(value: Any, path: Any, strings: bool, problem: Callable[[str], None]) -> None:
    kind = type(value)
    if kind is str:
        if strings and _SURROGATE.search(value):
            problem(f"{_path(path)}: a lone surrogate (half of a UTF-16 pair) is not text")
    elif kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            problem(f"{_path(path)}: integer beyond +-2^53 would be rounded by clients: quote it")
    elif kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            problem(f"{_path(path)}: {value} is not a JSON number")
    elif kind is not bool and value is not None:
        problem(f"{_path(path)}: {_json_kind(value)} is not a JSON value")


def _path(path: Any) -> str:
    """`flags[3].variants[0].value` for the path (parent, key) chain; "the document" for the root."""
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{_shown(key)[1:-1]}")
    text = "".join(reversed(parts)).lstrip(".") or "the document"
    return text if len(text) <= 200 else f"{text[:200]}..."


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _shown(key: Any, limit: int = 80) -> str:
    text = repr(key)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
