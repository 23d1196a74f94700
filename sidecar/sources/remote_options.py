"""The options a source's opener builds it with (declared as sidecar.options explains): how a
remote source (https://, ...) is polled and reached. The composition root's Settings has them
all; the registry passes them to every opener (registry.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.options import option, parse_path, parse_positive_seconds


@dataclass(frozen=True)
class RemoteSourceOptions:
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
