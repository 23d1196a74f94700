"""The options of the gRPC server, its limits, its streams, the flagd protocol, the health and
the management listeners (declared as sidecar.options explains).

Imported to read the command line, so it imports no gRPC: the parsers that need a server module
import it when they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.options import (
    option,
    parse_count,
    parse_listen_address,
    parse_optional_tcp_address,
    parse_path,
    parse_positive_count,
    parse_positive_seconds,
    parse_size,
)

FLAGD_DEFAULT_LISTEN = "127.0.0.1:8013"
SYNC_DEFAULT_LISTEN = "127.0.0.1:8015"  # flagd's sync port


def _listen_on_or_off(text: str, default: str) -> str:
    """HOST:PORT or unix:..., `on` for `default`, `off` for none (returned as "")."""
    value = text.strip().lower()
    if value == "off":
        return ""
    if value == "on":
        return default
    return parse_listen_address(text.strip())


def parse_flagd_listen(text: str) -> str:
    """An extra listener for flagd providers; `on` is flagd's 127.0.0.1:8013."""
    return _listen_on_or_off(text, FLAGD_DEFAULT_LISTEN)


def parse_sync_listen(text: str) -> str:
    """The sync listener; `on` is 127.0.0.1:8015 (flagd's sync port)."""
    return _listen_on_or_off(text, SYNC_DEFAULT_LISTEN)


def parse_context_value(text: str) -> str:
    """KEY=VALUE, checked (sidecar.server.flagd.mapping) and kept as text."""
    from .flagd.mapping import parse_context_value

    return "=".join(parse_context_value(text))


def parse_header_mapping(text: str) -> str:
    """HEADER=KEY, checked (sidecar.server.flagd.mapping) and kept as text, header lower-cased."""
    from .flagd.mapping import parse_header_mapping

    return "=".join(parse_header_mapping(text))


@dataclass(frozen=True)
class ServerOptions:
    """SidecarServer (app.py) and its listeners (listeners.py)."""

    listen: tuple[str, ...] = option(
        parse_listen_address,
        ("127.0.0.1:50051",),
        "ADDRESS",
        "gRPC listen address, HOST:PORT (port 0: any free port) or unix:///path; repeat for several",
        multiple=True,
    )
    tls_cert: Path | None = option(
        parse_path, None, "PATH", "PEM certificate chain: serve TLS on the TCP listeners"
    )
    tls_key: Path | None = option(parse_path, None, "PATH", "PEM private key of --tls-cert")
    tls_client_ca: Path | None = option(
        parse_path, None, "PATH", "PEM CA bundle: require client certificates signed by it (mutual TLS)"
    )
    handshake_timeout: float = option(
        parse_positive_seconds,
        5.0,
        "SECONDS",
        "close a gRPC connection that has not finished its TLS / HTTP/2 handshake in this time",
    )
    max_request_bytes: int = option(
        parse_size, 1024**2, "BYTES", "largest request message accepted (e.g. 1MiB)"
    )
    max_concurrent_calls: int = option(
        parse_count,
        512,
        "N",
        "calls in progress or queued at once, streams included; more are refused (0: no limit)",
    )


@dataclass(frozen=True)
class ContextLimitOptions:
    """ContextLimits (limits.py)."""

    max_context_keys: int = option(parse_count, 256, "N", "most attributes in one user context (0: no limit)")
    max_context_bytes: int = option(
        parse_size, 64 * 1024, "BYTES", "largest encoded user context (0: no limit)"
    )
    max_flag_key_bytes: int = option(
        parse_size,
        1024,
        "BYTES",
        "longest flag key a request may name, unless the flag set has it (0: no limit)",
    )
    max_evaluate_all_keys: int = option(
        parse_count, 1000, "N", "most distinct flag keys one EvaluateAll may list (0: no limit)"
    )
    max_response_bytes: int = option(
        parse_size,
        4 * 1024**2,
        "BYTES",
        "largest EvaluateAll / ResolveAll answer, debug traces included (0: no limit)",
    )


@dataclass(frozen=True)
class StreamOptions:
    """StreamLimits (streams.py), on the server and on the health listener."""

    max_streams: int = option(
        parse_positive_count,
        64,
        "N",
        "streaming calls open at once (Track, flagd EventStream, health Watch, reflection), each "
        "with a worker of its own on top of the unary ones; more are refused (RESOURCE_EXHAUSTED)",
    )
    max_streams_per_connection: int = option(
        parse_positive_count,
        16,
        "N",
        "streaming calls open at once on one client connection (Unix-socket clients: --max-streams "
        "only); more are refused (RESOURCE_EXHAUSTED)",
    )
    stream_idle_timeout: float = option(
        parse_positive_seconds,
        300.0,
        "SECONDS",
        "a stream with no message either way for this long is ended (DEADLINE_EXCEEDED)",
    )


@dataclass(frozen=True)
class FlagdOptions:
    """The flagd protocol (flagd/; README "Using OpenFeature flagd providers")."""

    flagd_listen: str = option(
        parse_flagd_listen,
        "",
        "HOST:PORT",
        "one more listener, like --listen (every service), where flagd providers look by default: "
        f"on = {FLAGD_DEFAULT_LISTEN}, off = none",
    )
    flagd_connect_listen: str = option(
        parse_optional_tcp_address,
        "",
        "HOST:PORT",
        "serve flagd.evaluation.v1 and v2 over the Connect protocol (HTTP/1.1; TLS as --listen) here, "
        "for flagd providers that speak Connect rather than gRPC (the Go one); needs the `connect` "
        "extra (off: none)",
    )
    context_value: tuple[str, ...] | None = option(
        parse_context_value,
        None,
        "KEY=VALUE",
        "flagd protocol: a static value merged into every evaluation's context (flagd's -X); "
        "repeat for several",
        multiple=True,
    )
    context_from_header: tuple[str, ...] | None = option(
        parse_header_mapping,
        None,
        "HEADER=KEY",
        "flagd protocol: the request header HEADER sets context key KEY (flagd's -H); repeat for several",
        multiple=True,
    )


@dataclass(frozen=True)
class SyncOptions:
    """SyncServer (sync/server.py): the sync stream other sidecars and in-process clients follow."""

    sync_listen: str = option(
        parse_sync_listen,
        "",
        "HOST:PORT",
        "serve flagsidecar.v1.SyncService (Watch, Fetch) and flagd.sync.v1.FlagSyncService on this "
        "grpc.aio listener, for sidecars with --source grpc://HOST:PORT and flagd's in-process "
        "providers: on = 127.0.0.1:8015, off = none (TLS as --listen)",
    )
    sync_max_streams: int = option(
        parse_positive_count,
        4096,
        "N",
        "Watch and SyncFlags streams open at once on the sync listener (no thread each); more are refused "
        "(RESOURCE_EXHAUSTED). --max-streams-per-connection and --stream-idle-timeout apply too",
    )


@dataclass(frozen=True)
class HealthListenerOptions:
    """HealthServer (health_listener.py)."""

    health_listen: str = option(
        parse_optional_tcp_address,
        "",
        "HOST:PORT",
        "a plaintext gRPC listener serving only grpc.health.v1.Health (for Kubernetes grpc probes; "
        "service liveness stays SERVING while draining), never the evaluation API (off: none)",
    )


@dataclass(frozen=True)
class ManagementOptions:
    """ManagementServer (management.py)."""

    management_listen: str = option(
        parse_optional_tcp_address,
        "127.0.0.1:8014",
        "HOST:PORT",
        "HTTP /healthz, /readyz and /metrics (off: disabled)",
    )
    management_max_connections: int = option(
        parse_positive_count,
        256,
        "N",
        "connections open at once on the management listener; over it the oldest idle one is closed",
    )
    management_timeout: float = option(
        parse_positive_seconds,
        5.0,
        "SECONDS",
        "the management listener drops a connection that sends no whole request (or takes no answer) "
        "for this long",
    )


@dataclass(frozen=True)
class AdminOptions:
    """AdminServer (admin_server.py) and its access (admin_access.py)."""

    admin_listen: str = option(
        parse_optional_tcp_address,
        "",
        "HOST:PORT",
        "serve the admin API (flagsidecar.v1.FlagAdminService) here, never on the evaluation "
        "listeners; needs a database --source and --admin-token-file or --tls-client-ca (off: none)",
    )
    admin_token_file: Path | None = option(
        parse_path,
        None,
        "PATH",
        "bearer tokens the admin API accepts, one per line, each optionally after a name "
        "(`alice TOKEN`): the name is recorded in the history",
    )
