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
from typing import Any

from ..engine import FlagSetError, Problem
from .yaml_values import load_yaml_values

MAX_SAFE_INTEGER = 2**53
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """How large a flag document may grow once parsed (--max-document-values, --max-document-depth)."""

    max_values: int = 1_000_000
    max_depth: int = 64


def parse_flag_document(
    data: bytes | str, source: str, limits: DocumentLimits | None = None, *, json_format: bool | None = None
) -> Any:
    """The document's JSON value; a FlagSetError listing every problem otherwise.

    YAML unless `json_format` (by default: unless `source` ends in `.json`).
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
    try:
        if json_format:
            document = _load_json(text, problem)
        else:
            document = load_yaml_values(text, problem, limits.max_depth)
    except RecursionError:  # deeper than the interpreter's stack: far past max_depth
        problem(f"nested more than {limits.max_depth} levels deep")
        raise FlagSetError(problems) from None
    if document is not None:
        _check_values(document, limits, problem)
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


def _load_json(text: str, problem: Callable[[str], None]) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key, value in items:
            if key in mapping:
                problem(f"key {_shown(key)} appears twice in one object")
            mapping[key] = value
        return mapping

    def constant(name: str) -> float:
        problem(f"{name} is not a JSON number")
        return 0.0

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as error:
        problem(f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}")
    except ValueError as error:  # an integer too long for int(): Python's own limit
        problem(f"not valid JSON: {error}")
    return None


# ---------------------------------------------------------------- both


def _check_values(document: Any, limits: DocumentLimits, problem: Callable[[str], None]) -> None:
    """Walk the document as served (aliases expanded) and report what JSON cannot carry.

    Iterative, with a budget: an alias bomb is refused after `max_values` steps, never expanded.
    """
    # (value, depth, path): a path is (parent path, key) and is only rendered for a problem.
    stack: list[tuple[Any, int, Any]] = [(document, 0, None)]
    count = 0
    while stack:
        value, depth, path = stack.pop()
        count += 1
        if count > limits.max_values:
            problem(
                f"the document expands to more than {limits.max_values:,} values (aliases included):"
                " it is too large to serve"
            )
            return
        kind = type(value)
        if kind is str:
            if _SURROGATE.search(value):
                problem(f"{_path(path)}: a lone surrogate (half of a UTF-16 pair) is not text")
        elif kind is dict or kind is list:
            if depth >= limits.max_depth:
                problem(f"{_path(path)}: nested more than {limits.max_depth} levels deep")
                continue
            if kind is dict:
                for key, item in value.items():
                    if _SURROGATE.search(key):
                        problem(f"{_path(path)}: a key holds a lone surrogate, which is not text")
                    stack.append((item, depth + 1, (path, key)))
            else:
                stack.extend((item, depth + 1, (path, index)) for index, item in enumerate(value))
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
