"""Settings: one table of options, read from command-line flags, environment, config file, defaults.

Every option is declared once in OPTIONS; the argparse flags, the FLAG_SIDECAR_<NAME>
environment variables and the config-file keys are generated from it. Resolution walks a list
of layers, first hit wins: [command line, environment, config file], then the default. Every
value is parsed by the option's own parser whatever layer it came from, so a bad value is
rejected at start with the option and its source in the message.

An option with `multiple=True` takes several values: a repeated flag, a list in the file, or
one environment variable split on the option's `separator`.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "FLAG_SIDECAR_"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")
UNIX_PREFIX = "unix:"

RawValue = str | Sequence[str]


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the option and where it came from."""


# ---------------------------------------------------------------- value parsers (raise ValueError)


def parse_path(text: str) -> Path:
    if not text:
        raise ValueError("expected a file path")
    return Path(text)


def parse_tcp_address(text: str) -> str:
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:50051 or [::1]:50051")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not a number from 0 to 65535")
    return text


def parse_listen_address(text: str) -> str:
    """HOST:PORT, or a Unix domain socket as unix:///absolute/path or unix:relative/path."""
    if text.startswith(UNIX_PREFIX):
        if not unix_socket_path(text):
            raise ValueError("expected unix:///absolute/path or unix:relative/path")
        return text
    return parse_tcp_address(text)


def unix_socket_path(address: str) -> str:
    """The file path of a unix: address (gRPC's spelling: unix:path or unix:///abs/path)."""
    rest = address[len(UNIX_PREFIX) :]
    return "/" + rest.lstrip("/") if rest.startswith("//") else rest


def parse_optional_tcp_address(text: str) -> str:
    """HOST:PORT, or `off` to disable the listener (returned as "")."""
    return "" if text.strip().lower() == "off" else parse_tcp_address(text)


def parse_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError("expected a number of seconds, for example 30 or 0.5") from None
    if not 0 <= seconds < float("inf"):
        raise ValueError("expected a number of seconds, 0 or more")
    return seconds


def parse_count(text: str) -> int:
    """A whole number, 0 or more (0 means "no limit" where an option says so)."""
    if not text.strip().isdigit():
        raise ValueError("expected a whole number, 0 or more")
    return int(text)


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """Bytes: 65536, 64KiB, 4MiB, 1GiB (K/M/G are powers of 1024, with or without `iB`)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError("expected a size in bytes, for example 65536, 64KiB or 4MiB")
    number, unit = match.groups()
    size = int(number) * _UNITS[(unit or "")[:1].lower()]
    if size > 2**31 - 1:  # gRPC's message size limits are C ints
        raise ValueError("expected a size below 2GiB")
    return size


def parse_choice(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


def parse_positive_seconds(text: str) -> float:
    seconds = parse_seconds(text)
    if seconds <= 0:
        raise ValueError("expected a number of seconds above 0")
    return seconds


def parse_positive_count(text: str) -> int:
    count = parse_count(text)
    if count < 1:
        raise ValueError("expected a whole number, 1 or more")
    return count


def parse_exporter(text: str) -> str:
    """KIND[:key=value,...]; the syntax and the kind are checked here (an option error, exit 2),
    the kind's own options when the pipeline is built."""
    from sidecar.events.exporters import FACTORIES
    from sidecar.events.options import parse_exporter_spec

    spec = parse_exporter_spec(text)  # raises SpecError, a ValueError
    if spec.kind not in FACTORIES:
        raise ValueError(
            f"unknown exporter kind {spec.kind!r}; the exporters are {', '.join(sorted(FACTORIES))}"
        )
    return text.strip()


FLAGD_DEFAULT_LISTEN = "127.0.0.1:8013"


def parse_flagd_listen(text: str) -> str:
    """An extra listener for flagd providers: HOST:PORT or unix:..., `on` for flagd's
    127.0.0.1:8013, `off` for none (returned as "")."""
    value = text.strip().lower()
    if value == "off":
        return ""
    if value == "on":
        return FLAGD_DEFAULT_LISTEN
    return parse_listen_address(text.strip())


def parse_context_value(text: str) -> str:
    """KEY=VALUE, checked (sidecar.server.flagd.mapping) and kept as text."""
    from sidecar.server.flagd.mapping import parse_context_value

    return "=".join(parse_context_value(text))


def parse_header_mapping(text: str) -> str:
    """HEADER=KEY, checked (sidecar.server.flagd.mapping) and kept as text, header lower-cased."""
    from sidecar.server.flagd.mapping import parse_header_mapping

    return "=".join(parse_header_mapping(text))


parse_log_level = parse_choice(LOG_LEVELS)
parse_log_format = parse_choice(LOG_FORMATS)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Option:
    name: str  # the Settings field; also gives --flag-name, FLAG_SIDECAR_NAME and the file key
    parse: Callable[[str], Any]
    default: Any  # already parsed; None means "no default"
    metavar: str
    help: str
    multiple: bool = False  # a tuple of values: repeated flag, YAML list, env split on `separator`
    separator: str = ","
    in_file: bool = True  # False for --config itself

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option(
        "config",
        parse_path,
        None,
        "PATH",
        "YAML file setting any option below (keys = option names)",
        in_file=False,
    ),
    Option("flags", parse_path, None, "PATH", "flag file to serve (YAML or JSON); watched for edits"),
    Option(
        "listen",
        parse_listen_address,
        ("127.0.0.1:50051",),
        "ADDRESS",
        "gRPC listen address, HOST:PORT (port 0: any free port) or unix:///path; repeat for several",
        multiple=True,
    ),
    Option(
        "management_listen",
        parse_optional_tcp_address,
        "127.0.0.1:8014",
        "HOST:PORT",
        "HTTP /healthz, /readyz and /metrics (off: disabled)",
    ),
    Option(
        "management_max_connections",
        parse_positive_count,
        256,
        "N",
        "connections open at once on the management listener; over it the oldest idle one is closed",
    ),
    Option(
        "management_timeout",
        parse_positive_seconds,
        5.0,
        "SECONDS",
        "the management listener drops a connection that sends no whole request (or takes no answer) "
        "for this long",
    ),
    Option(
        "health_listen",
        parse_optional_tcp_address,
        "",
        "HOST:PORT",
        "a plaintext gRPC listener serving only grpc.health.v1.Health (for Kubernetes grpc probes; "
        "service liveness stays SERVING while draining), never the evaluation API (off: none)",
    ),
    Option(
        "cache_ttl", parse_seconds, 30.0, "SECONDS", "how long flags, segments and evaluations stay cached"
    ),
    Option(
        "eval_cache_size",
        parse_count,
        0,
        "N",
        "cache up to N evaluation results (0: off; evaluating is cheaper than the cache key)",
    ),
    Option("log_level", parse_log_level, "info", "LEVEL", f"logging level: {', '.join(LOG_LEVELS)}"),
    Option("log_format", parse_log_format, "json", "FORMAT", "json (one object per line) or text"),
    Option(
        "log_repeat_limit",
        parse_count,
        10,
        "N",
        "at most N lines of one message per --log-repeat-interval, then one summary (0: no limit)",
    ),
    Option(
        "log_repeat_interval",
        parse_positive_seconds,
        60.0,
        "SECONDS",
        "the interval of --log-repeat-limit",
    ),
    Option("tls_cert", parse_path, None, "PATH", "PEM certificate chain: serve TLS on the TCP listeners"),
    Option("tls_key", parse_path, None, "PATH", "PEM private key of --tls-cert"),
    Option(
        "tls_client_ca",
        parse_path,
        None,
        "PATH",
        "PEM CA bundle: require client certificates signed by it (mutual TLS)",
    ),
    Option(
        "handshake_timeout",
        parse_positive_seconds,
        5.0,
        "SECONDS",
        "close a gRPC connection that has not finished its TLS / HTTP/2 handshake in this time",
    ),
    Option("max_request_bytes", parse_size, 1024**2, "BYTES", "largest request message accepted (e.g. 1MiB)"),
    Option("max_context_keys", parse_count, 256, "N", "most attributes in one user context (0: no limit)"),
    Option(
        "max_context_bytes",
        parse_size,
        64 * 1024,
        "BYTES",
        "largest encoded user context (0: no limit)",
    ),
    Option(
        "max_flag_key_bytes",
        parse_size,
        1024,
        "BYTES",
        "longest flag key a request may name, unless the flag set has it (0: no limit)",
    ),
    Option(
        "max_evaluate_all_keys",
        parse_count,
        1000,
        "N",
        "most distinct flag keys one EvaluateAll may list (0: no limit)",
    ),
    Option(
        "max_response_bytes",
        parse_size,
        4 * 1024**2,
        "BYTES",
        "largest EvaluateAll / ResolveAll answer, debug traces included (0: no limit)",
    ),
    Option(
        "max_concurrent_calls",
        parse_count,
        512,
        "N",
        "calls in progress or queued at once, streams included; more are refused (0: no limit)",
    ),
    # ---- flagd protocol (README "Using OpenFeature flagd providers")
    Option(
        "flagd_listen",
        parse_flagd_listen,
        "",
        "HOST:PORT",
        "one more listener, like --listen (every service), where flagd providers look by default: "
        f"on = {FLAGD_DEFAULT_LISTEN}, off = none",
    ),
    Option(
        "context_value",
        parse_context_value,
        None,
        "KEY=VALUE",
        "flagd protocol: a static value merged into every evaluation's context (flagd's -X); "
        "repeat for several",
        multiple=True,
    ),
    Option(
        "context_from_header",
        parse_header_mapping,
        None,
        "HEADER=KEY",
        "flagd protocol: the request header HEADER sets context key KEY (flagd's -H); repeat for several",
        multiple=True,
    ),
    # ---- events (README "Events")
    Option(
        "exporter",
        parse_exporter,
        None,
        "KIND[:key=value,...]",
        "send evaluation and tracking events to an exporter: log, file:dir=PATH[,format=jsonl|csv|"
        "parquet], webhook:url=URL[,secret=S], kafka:brokers=HOST:PORT,topic=T; repeat for several "
        "(environment: one per line)",
        multiple=True,
        separator="\n",
    ),
    Option(
        "flush_interval",
        parse_positive_seconds,
        10.0,
        "SECONDS",
        "bulk exporters (file, webhook) get the waiting events at least this often",
    ),
    Option(
        "max_events_in_memory",
        parse_positive_count,
        10_000,
        "N",
        "bulk exporters get a batch as soon as this many events wait",
    ),
    Option(
        "events_buffer_bytes",
        parse_size,
        64 * 1024**2,
        "BYTES",
        "memory each exporter may hold for events it cannot take yet; past it they go to the "
        "spool (without one: dropped, counted and logged; Track answers RESOURCE_EXHAUSTED)",
    ),
    Option(
        "max_event_details_bytes",
        parse_size,
        64 * 1024,
        "BYTES",
        "largest encoded `details` of a Track event; larger ones are INVALID_ARGUMENT (0: no limit)",
    ),
    Option(
        "spool_dir",
        parse_path,
        None,
        "PATH",
        "disk spool (a subdirectory per exporter): events an exporter could not take yet survive "
        "outages and restarts; without it they are kept in memory only",
    ),
    Option(
        "spool_max_bytes",
        parse_size,
        256 * 1024**2,
        "BYTES",
        "disk quota of each exporter's spool; past it new events are dropped (counted and logged)",
    ),
    Option(
        "events_on_evaluate_all",
        parse_bool,
        True,
        "BOOL",
        "EvaluateAll produces one event per flag, like Evaluate (false: it produces none)",
    ),
    Option(
        "events_flush_timeout",
        parse_seconds,
        5.0,
        "SECONDS",
        "on SIGTERM/SIGINT, how long exporters may take to deliver waiting events (within "
        "--shutdown-timeout); what is left goes to the spool",
    ),
    Option(
        "shutdown_grace",
        parse_seconds,
        10.0,
        "SECONDS",
        "on SIGTERM/SIGINT, how long in-flight calls may take",
    ),
    Option(
        "shutdown_timeout",
        parse_seconds,
        15.0,
        "SECONDS",
        "on SIGTERM/SIGINT, deadline for the whole shutdown (calls, then event flush); exit 0 within it",
    ),
)


@dataclass(frozen=True)
class Settings:
    config: Path | None
    flags: Path | None
    listen: tuple[str, ...]
    management_listen: str
    management_max_connections: int
    management_timeout: float
    health_listen: str
    cache_ttl: float
    eval_cache_size: int
    log_level: str
    log_format: str
    log_repeat_limit: int
    log_repeat_interval: float
    tls_cert: Path | None
    tls_key: Path | None
    tls_client_ca: Path | None
    handshake_timeout: float
    max_request_bytes: int
    max_context_keys: int
    max_context_bytes: int
    max_flag_key_bytes: int
    max_evaluate_all_keys: int
    max_response_bytes: int
    max_concurrent_calls: int
    flagd_listen: str
    context_value: tuple[str, ...] | None
    context_from_header: tuple[str, ...] | None
    exporter: tuple[str, ...] | None
    flush_interval: float
    max_events_in_memory: int
    events_buffer_bytes: int
    max_event_details_bytes: int
    spool_dir: Path | None
    spool_max_bytes: int
    events_on_evaluate_all: bool
    events_flush_timeout: float
    shutdown_grace: float
    shutdown_timeout: float


OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def option_named(name: str) -> Option:
    return OPTIONS_BY_NAME[name]


# ---------------------------------------------------------------- layers and resolution


@dataclass(frozen=True)
class Layer:
    """Raw (unparsed) values from one source, and how to name that source in an error."""

    values: Mapping[str, RawValue]
    describe: Callable[[Option], str]


def command_line_layer(namespace: argparse.Namespace) -> Layer:
    given = {o.name: value for o in OPTIONS if (value := getattr(namespace, o.name, None)) is not None}
    return Layer(given, lambda option: f"command-line flag {option.flag}")


def environment_layer(environ: Mapping[str, str]) -> Layer:
    # An empty variable counts as unset, as `FOO=` in a compose file or Kubernetes manifest means.
    given: dict[str, RawValue] = {}
    for option in OPTIONS:
        text = environ.get(option.env_var)
        if text:
            given[option.name] = text.split(option.separator) if option.multiple else text
    return Layer(given, lambda option: f"environment variable {option.env_var}")


def parse_value(option: Option, raw: RawValue) -> Any:
    """Parse one layer's raw value for `option`. Raises ValueError."""
    if option.multiple:
        items = [raw] if isinstance(raw, str) else list(raw)
        values = tuple(option.parse(item.strip()) for item in items if item.strip())
        if not values:
            raise ValueError("expected at least one value")
        return values
    if not isinstance(raw, str):
        raise ValueError("expected a single value, not a list")
    return option.parse(raw)


def resolve_with_sources(layers: Sequence[Layer]) -> tuple[Settings, dict[str, str]]:
    """Settings, and for each option where its value came from ("default" or the layer's name)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        values[option.name], sources[option.name] = option.default, "default"
        for layer in layers:
            if option.name in layer.values:
                raw = layer.values[option.name]
                try:
                    values[option.name] = parse_value(option, raw)
                except ValueError as error:
                    shown = raw if isinstance(raw, str) else list(raw)
                    raise ConfigError(
                        f"invalid {option.name} {shown!r} (from {layer.describe(option)}): {error}"
                    ) from None
                sources[option.name] = layer.describe(option)
                break
    settings = Settings(**values)
    check_consistency(settings, sources)
    return settings, sources


def resolve(layers: Sequence[Layer]) -> Settings:
    """The first layer that sets an option wins; otherwise its default. Raises ConfigError."""
    return resolve_with_sources(layers)[0]


def check_consistency(settings: Settings, sources: Mapping[str, str]) -> None:
    """Rules between options, checked at start rather than discovered at the first call."""

    def where(name: str) -> str:
        return f"{option_named(name).flag} (from {sources[name]})"

    if (settings.tls_cert is None) != (settings.tls_key is None):
        given = "tls_cert" if settings.tls_key is None else "tls_key"
        raise ConfigError(f"{where(given)} needs both --tls-cert and --tls-key")
    if settings.tls_client_ca is not None and settings.tls_cert is None:
        raise ConfigError(f"{where('tls_client_ca')} (mutual TLS) needs --tls-cert and --tls-key as well")
    if settings.tls_cert is not None and all(a.startswith(UNIX_PREFIX) for a in settings.listen):
        raise ConfigError(f"{where('tls_cert')}: TLS applies to TCP listeners, and --listen has none")
    if settings.shutdown_timeout < settings.shutdown_grace:
        raise ConfigError(
            f"{where('shutdown_timeout')} is {settings.shutdown_timeout:g}s, shorter than "
            f"{where('shutdown_grace')} ({settings.shutdown_grace:g}s)"
        )


def add_options(parser: argparse.ArgumentParser, exclude: Sequence[str] = ()) -> None:
    """Add a --flag for every option. Values stay raw strings; `resolve` parses them all alike."""
    for option in OPTIONS:
        if option.name in exclude:
            continue
        default = "" if option.default is None else f" (default {_show_default(option.default)})"
        parser.add_argument(
            option.flag,
            dest=option.name,
            metavar=option.metavar,
            default=None,
            action="append" if option.multiple else "store",
            help=f"{option.help}{default}; env {option.env_var}",
        )


def _show_default(default: Any) -> str:
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)
    return str(default) if default != "" else "off"


def layers_for(namespace: argparse.Namespace, environ: Mapping[str, str]) -> list[Layer]:
    """[command line, environment, config file (if --config or FLAG_SIDECAR_CONFIG names one)]."""
    from .config_file import file_layer  # config_file imports this module

    layers = [command_line_layer(namespace), environment_layer(environ)]
    config_option = option_named("config")
    for layer in layers:
        if "config" in layer.values:
            raw = layer.values["config"]
            try:
                path = parse_value(config_option, raw)
            except ValueError as error:
                source = layer.describe(config_option)
                raise ConfigError(f"invalid config {raw!r} (from {source}): {error}") from None
            layers.append(file_layer(path))
            break
    return layers


def load_settings(namespace: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    return load_settings_with_sources(namespace, environ)[0]


def load_settings_with_sources(
    namespace: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    environ = os.environ if environ is None else environ
    return resolve_with_sources(layers_for(namespace, environ))


def require(settings: Settings, name: str) -> Any:
    """The value of an option that this command cannot do without. Raises ConfigError."""
    value = getattr(settings, name)
    if value is None:
        option = option_named(name)
        raise ConfigError(
            f"{name} is required: pass {option.flag} {option.metavar} or set {option.env_var}"
            f" (or `{name}:` in the --config file)"
        )
    return value
