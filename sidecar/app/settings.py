"""Every option of `flag-sidecar serve`: the options each component declares next to its code,
put together into one Settings class, and the rules between options of different components.

To add an option, declare one field in the options dataclass of the component that uses it;
`serve --help`, the environment variable, the config-file key and `config --print` follow. To add
a component's options, add its dataclass to the bases of Settings. README's option table lists
every option (tests/ops/test_readme.py checks it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.config import ConfigError, ConfigFileOptions, Layer, OptionTable
from sidecar.events import Exporter
from sidecar.events.exporters import FACTORIES
from sidecar.events.options import Options
from sidecar.events.settings import EventOptions
from sidecar.logging_setup import LoggingOptions
from sidecar.options import UNIX_PREFIX, Option, option, parse_seconds
from sidecar.server.settings import (
    AdminOptions,
    ContextLimitOptions,
    FlagdOptions,
    HealthListenerOptions,
    ManagementOptions,
    ServerOptions,
    StreamOptions,
    SyncOptions,
)
from sidecar.sources import DEFAULT_FLAG_SET, SourceURIError, open_database, open_source
from sidecar.sources.remote_options import RemoteSourceOptions
from sidecar.sources.settings import SourceOptions, selected_flag_set
from sidecar.store.settings import StoreOptions

__all__ = ["OPTIONS", "TABLE", "ConfigError", "Layer", "Settings"]


def _users_exporter(options: Options) -> Exporter:
    # The database package loads with the first exporter of this kind, as other kinds' modules do.
    from sidecar.store.user_results import UserResultsExporter

    return UserResultsExporter.from_options(options, open_database=open_database)


# `--exporter users:source=...` writes to a flag database, which the events layer may not know:
# its factory is added here, by the composition root.
FACTORIES.setdefault("users", _users_exporter)


@dataclass(frozen=True)
class ShutdownOptions:
    """The runtime's own options (runtime.py: the shutdown sequence)."""

    shutdown_grace: float = option(
        parse_seconds, 10.0, "SECONDS", "on SIGTERM/SIGINT, how long in-flight calls may take"
    )
    shutdown_timeout: float = option(
        parse_seconds,
        15.0,
        "SECONDS",
        "on SIGTERM/SIGINT, deadline for the whole shutdown (calls, then event flush); exit 0 within it",
    )


# dataclasses take the fields of the last base first: the options appear (in --help and in
# `config --print`) from the bottom of this list to the top.
@dataclass(frozen=True)
class Settings(
    ShutdownOptions,
    LoggingOptions,
    EventOptions,
    AdminOptions,
    ManagementOptions,
    HealthListenerOptions,
    SyncOptions,
    FlagdOptions,
    StreamOptions,
    ContextLimitOptions,
    ServerOptions,
    StoreOptions,
    RemoteSourceOptions,
    SourceOptions,
    ConfigFileOptions,
):
    """The settings of one `serve` process (fields: every component's options)."""


def check_consistency(settings: Settings, sources: Mapping[str, str]) -> None:
    """Rules between options, checked at start rather than discovered at the first call."""

    def where(name: str) -> str:
        return f"{option_named(name).flag} (from {sources[name]})"

    if settings.flags is not None and settings.source is not None:
        raise ConfigError(f"{where('flags')} and {where('source')} both name the flags: give one")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        given = "tls_cert" if settings.tls_key is None else "tls_key"
        raise ConfigError(f"{where(given)} needs both --tls-cert and --tls-key")
    if (settings.source_tls_cert is None) != (settings.source_tls_key is None):
        given = "source_tls_cert" if settings.source_tls_key is None else "source_tls_key"
        raise ConfigError(f"{where(given)} needs both --source-tls-cert and --source-tls-key")
    if settings.tls_client_ca is not None and settings.tls_cert is None:
        raise ConfigError(f"{where('tls_client_ca')} (mutual TLS) needs --tls-cert and --tls-key as well")
    if settings.tls_cert is not None and all(a.startswith(UNIX_PREFIX) for a in settings.listen):
        raise ConfigError(f"{where('tls_cert')}: TLS applies to TCP listeners, and --listen has none")
    if settings.max_concurrent_calls and settings.max_concurrent_calls <= settings.max_streams:
        # grpcio counts open streams against --max-concurrent-calls: unary calls need room too.
        raise ConfigError(
            f"{where('max_concurrent_calls')} is {settings.max_concurrent_calls}, not more than "
            f"{where('max_streams')} ({settings.max_streams}): open streams could refuse every unary call"
        )
    if settings.max_streams_per_connection > settings.max_streams:
        raise ConfigError(
            f"{where('max_streams_per_connection')} ({settings.max_streams_per_connection}) is more "
            f"than {where('max_streams')} ({settings.max_streams})"
        )
    flag_set = selected_flag_set(settings.selector)
    if flag_set != DEFAULT_FLAG_SET:
        if settings.flags is not None:
            raise ConfigError(
                f"{where('selector')}: a flag file is the one flag set `default`; flag sets are for "
                "database sources (--source sqlite:///path)"
            )
        if settings.source is not None:
            try:
                open_source(settings.source, settings)
            except SourceURIError as error:
                raise ConfigError(f"{where('selector')}: {error}") from None
    if settings.admin_listen:
        _check_admin(settings, where)
    if settings.shutdown_timeout < settings.shutdown_grace:
        raise ConfigError(
            f"{where('shutdown_timeout')} is {settings.shutdown_timeout:g}s, shorter than "
            f"{where('shutdown_grace')} ({settings.shutdown_grace:g}s)"
        )


def _check_admin(settings: Settings, where: Callable[[str], str]) -> None:
    if settings.source is None:
        raise ConfigError(f"{where('admin_listen')} writes to a flag database: give --source sqlite:///path")
    try:
        open_database(settings.source)
    except SourceURIError as error:
        raise ConfigError(f"{where('admin_listen')}: {error}") from None
    if settings.admin_token_file is None and settings.tls_client_ca is None:
        raise ConfigError(
            f"{where('admin_listen')} needs a way to authenticate callers: --admin-token-file, or "
            "--tls-client-ca (mutual TLS) with --tls-cert and --tls-key"
        )
    evaluation_listeners = (*settings.listen, settings.flagd_listen, settings.flagd_connect_listen)
    if not settings.admin_listen.endswith(":0") and settings.admin_listen in evaluation_listeners:
        raise ConfigError(f"{where('admin_listen')} is an evaluation listener too: give it a port of its own")


TABLE: OptionTable[Settings] = OptionTable(Settings, check_consistency)
OPTIONS: tuple[Option, ...] = TABLE.options
OPTIONS_BY_NAME: Mapping[str, Option] = TABLE.by_name

# The table's operations, as functions of this module.
option_named = TABLE.option_named
add_options = TABLE.add_options
command_line_layer = TABLE.command_line_layer
environment_layer = TABLE.environment_layer
resolve = TABLE.resolve
resolve_with_sources = TABLE.resolve_with_sources
render_effective = TABLE.render


def load_settings(namespace: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    return TABLE.load_settings(namespace, environ)


def load_settings_with_sources(
    namespace: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    return TABLE.load_settings_with_sources(namespace, environ)


def require(settings: Settings, name: str) -> Any:
    return TABLE.require(settings, name)
