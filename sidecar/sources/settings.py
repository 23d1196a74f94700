"""The options of the flag source (declared as sidecar.options explains)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.options import option, parse_path, parse_positive_seconds


def parse_source(text: str) -> str:
    """A source URI (file:///path/flags.yaml, https://host/flags.yaml, ...); the scheme and what
    the scheme's opener checks are checked here (an option error, exit 2)."""
    from .registry import open_source  # the registry builds sources from these options

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
        "where the flags come from, by URI scheme: file:///path/flags.yaml, https://host/flags.yaml",
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
