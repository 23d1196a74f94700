"""The options of the flag store (declared as sidecar.options explains)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.options import option, parse_count, parse_path, parse_seconds


@dataclass(frozen=True)
class StoreOptions:
    state_dir: Path | None = option(
        parse_path,
        None,
        "PATH",
        "directory where flag versions are kept across restarts; without it they count from 1 in "
        "each process",
    )
    cache_ttl: float = option(
        parse_seconds,
        30.0,
        "SECONDS",
        "how long a database source's cached flags and segments serve before they are revalidated "
        "in the background (and evaluation results stay cached, with --eval-cache-size)",
    )
    eval_cache_size: int = option(
        parse_count,
        0,
        "N",
        "cache up to N evaluation results (0: off; evaluating is cheaper than the cache key)",
    )
