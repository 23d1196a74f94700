"""Settings: one table of options, read from command-line flags, then environment, then defaults.

Every option is declared once in OPTIONS; the argparse flags and the FLAG_SIDECAR_<NAME>
environment variables are generated from it. Resolution walks a list of layers, first hit wins:
today [command line, environment], then the default. A config file layer slots in after the
environment without touching the options.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "FLAG_SIDECAR_"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the option and where it came from."""


# ---------------------------------------------------------------- value parsers (raise ValueError)


def parse_path(text: str) -> Path:
    if not text:
        raise ValueError("expected a file path")
    return Path(text)


def parse_listen_address(text: str) -> str:
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:50051 or [::1]:50051")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not a number from 0 to 65535")
    return text


def parse_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError("expected a number of seconds, for example 30 or 0.5") from None
    if not 0 <= seconds < float("inf"):
        raise ValueError("expected a number of seconds, 0 or more")
    return seconds


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Option:
    name: str  # the Settings field; also gives --flag-name and FLAG_SIDECAR_NAME
    parse: Callable[[str], Any]
    default: Any  # already parsed; None means "no default"
    metavar: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option("flags", parse_path, None, "PATH", "flag file to serve (YAML or JSON); watched for edits"),
    Option(
        "listen",
        parse_listen_address,
        "127.0.0.1:50051",
        "HOST:PORT",
        "gRPC listen address (port 0: any free port)",
    ),
    Option(
        "cache_ttl", parse_seconds, 30.0, "SECONDS", "how long flags, segments and evaluations stay cached"
    ),
    Option("log_level", parse_log_level, "info", "LEVEL", f"logging level: {', '.join(LOG_LEVELS)}"),
    Option(
        "shutdown_grace",
        parse_seconds,
        10.0,
        "SECONDS",
        "on SIGTERM/SIGINT, how long in-flight calls may take",
    ),
)


@dataclass(frozen=True)
class Settings:
    flags: Path | None
    listen: str
    cache_ttl: float
    log_level: str
    shutdown_grace: float


# ---------------------------------------------------------------- layers and resolution


@dataclass(frozen=True)
class Layer:
    """Raw (unparsed) values from one source, and how to name that source in an error."""

    values: Mapping[str, str]
    describe: Callable[[Option], str]


def command_line_layer(namespace: argparse.Namespace) -> Layer:
    given = {o.name: value for o in OPTIONS if (value := getattr(namespace, o.name, None)) is not None}
    return Layer(given, lambda option: f"command-line flag {option.flag}")


def environment_layer(environ: Mapping[str, str]) -> Layer:
    # An empty variable counts as unset, as `FOO=` in a compose file or Kubernetes manifest means.
    given = {o.name: environ[o.env_var] for o in OPTIONS if environ.get(o.env_var)}
    return Layer(given, lambda option: f"environment variable {option.env_var}")


def resolve(layers: Sequence[Layer]) -> Settings:
    """The first layer that sets an option wins; otherwise its default. Raises ConfigError."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        values[option.name] = option.default
        for layer in layers:
            if option.name in layer.values:
                raw = layer.values[option.name]
                try:
                    values[option.name] = option.parse(raw)
                except ValueError as error:
                    raise ConfigError(
                        f"invalid {option.name} {raw!r} (from {layer.describe(option)}): {error}"
                    ) from None
                break
    return Settings(**values)


def add_options(parser: argparse.ArgumentParser, exclude: Sequence[str] = ()) -> None:
    """Add a --flag for every option. Values stay raw strings; `resolve` parses them all alike."""
    for option in OPTIONS:
        if option.name in exclude:
            continue
        default = "" if option.default is None else f" (default {option.default})"
        parser.add_argument(
            option.flag,
            dest=option.name,
            metavar=option.metavar,
            default=None,
            help=f"{option.help}{default}; env {option.env_var}",
        )


def load_settings(namespace: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    return resolve([command_line_layer(namespace), environment_layer(environ)])


def require(settings: Settings, name: str) -> Any:
    """The value of an option that this command cannot do without. Raises ConfigError."""
    value = getattr(settings, name)
    if value is None:
        option = next(o for o in OPTIONS if o.name == name)
        raise ConfigError(f"{name} is required: pass {option.flag} {option.metavar} or set {option.env_var}")
    return value
