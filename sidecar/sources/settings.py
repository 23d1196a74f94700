"""The options of the flag source (declared as sidecar.options explains)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sidecar.options import option, parse_path

from .database import DEFAULT_FLAG_SET
from .registry import open_source

_FLAG_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SELECTOR_KEY = "flag-set"


def parse_flag_set(text: str) -> str:
    """A flag set's name: letters, digits, `.`, `_` and `-`, 64 at most, starting with a letter or digit."""
    name = text.strip()
    if not _FLAG_SET_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a flag set name (letters, digits, '.', '_' and '-', at most 64, "
            "starting with a letter or digit)"
        )
    return name


def parse_selector(text: str) -> str:
    """flag-set=NAME (the one selector there is), kept as that text."""
    key, equals, value = text.strip().partition("=")
    if not equals or key.strip() != SELECTOR_KEY:
        raise ValueError(f"expected {SELECTOR_KEY}=NAME, for example {SELECTOR_KEY}=checkout")
    return f"{SELECTOR_KEY}={parse_flag_set(value)}"


def selected_flag_set(selector: str) -> str:
    """The flag set a (parsed) selector names."""
    return selector.partition("=")[2]


def parse_source(text: str) -> str:
    """A source URI (file:///path/flags.yaml, ...); the scheme and what the scheme's opener checks
    are checked here (an option error, exit 2)."""
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
        "where the flags come from, by URI scheme: file:///path/flags.yaml, sqlite:///path/flags.db",
    )
    selector: str = option(
        parse_selector,
        f"{SELECTOR_KEY}={DEFAULT_FLAG_SET}",
        "flag-set=NAME",
        "the flag set this sidecar serves (database sources; a file is the set `default`)",
    )
