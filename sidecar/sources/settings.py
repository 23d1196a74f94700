"""The options of the flag source (declared as sidecar.options explains); those the openers use
are in remote_options.py (the registry needs them, and this module needs the registry)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.options import option, parse_path

from .registry import open_source
from .remote_options import SELECTOR_KEY, parse_flag_set, parse_selector, selected_flag_set

__all__ = [
    "SELECTOR_KEY",
    "SourceOptions",
    "parse_flag_set",
    "parse_selector",
    "parse_source",
    "selected_flag_set",
]


def parse_source(text: str) -> str:
    """A source URI (file:///path/flags.yaml, https://host/flags.yaml, ...); the scheme and what
    the scheme's opener checks are checked here (an option error, exit 2)."""
    open_source(text)  # raises SourceURIError, a ValueError; opening reads nothing
    return text.strip()


@dataclass(frozen=True)
class SourceOptions:
    flags: Path | None = option(
        parse_path,
        None,
        "PATH",
        "flag file to serve (YAML or JSON); watched for edits (short for --source file://PATH)",
    )
    source: str | None = option(
        parse_source,
        None,
        "URI",
        "where the flags come from, by URI scheme: file:///path/flags.yaml, https://host/flags.yaml, "
        "sqlite:///path/flags.db, postgresql://user@host/db, or another flag-sidecar's sync listener: "
        "grpc://HOST:PORT?selector=flag-set=NAME (grpcs:// for TLS)",
    )
