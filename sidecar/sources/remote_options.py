"""The options a source's opener builds it with (declared as sidecar.options explains): which
flag set a database source serves, how a remote source (https://, ...) is polled and reached.
The composition root's Settings has them all; the registry passes them to every opener
(registry.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sidecar.options import option, parse_path, parse_positive_seconds

# The flag set a source serves unless --selector names another (a file holds only this one).
DEFAULT_FLAG_SET: Final = "default"
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


@dataclass(frozen=True)
class RemoteSourceOptions:
    selector: str = option(
        parse_selector,
        f"{SELECTOR_KEY}={DEFAULT_FLAG_SET}",
        "flag-set=NAME",
        "the flag set this sidecar serves (database sources; a file is the set `default`)",
    )
    source_poll_interval: float = option(
        parse_positive_seconds,
        10.0,
        "SECONDS",
        "how often a remote source (https://) is asked whether its document changed",
    )
    source_timeout: float = option(
        parse_positive_seconds,
        10.0,
        "SECONDS",
        "a remote source's connect, each read, and a whole fetch may take this long",
    )
    source_tls_ca: Path | None = option(
        parse_path,
        None,
        "PATH",
        "PEM CA bundle that a remote source's certificate must chain to (default: the system's)",
    )
    source_tls_cert: Path | None = option(
        parse_path, None, "PATH", "PEM client certificate for a remote source that asks for one"
    )
    source_tls_key: Path | None = option(parse_path, None, "PATH", "PEM private key of --source-tls-cert")
