"""Namespaced cache keys (the seed's FlagCacheKey / SegmentCacheKey / EvalCacheKey)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def _key(namespace: str, parts: tuple[object, ...]) -> str:
    return ":".join((namespace, *(str(part) for part in parts)))


def flag_cache_key(*parts: object) -> str:
    """`flag:<key>`."""
    return _key("flag", parts)


def segment_cache_key(*parts: object) -> str:
    """`segment:<key>`."""
    return _key("segment", parts)


def eval_cache_key(*parts: object) -> str:
    """`eval:<flag key>:<flag version>:<segments revision>:<request hash>`."""
    return _key("eval", parts)


def request_hash(context: Mapping[str, Any]) -> str:
    """SHA-1 of the canonical context (sorted keys, compact JSON), "$userId" included."""
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(canonical.encode()).hexdigest()
