"""How a component declares its options, and the value parsers they use.

A component declares its options as a frozen dataclass next to its code, one field per option:

    @dataclass(frozen=True)
    class StreamOptions:
        max_streams: int = option(parse_positive_count, 64, "N", "streaming calls open at once")

The field name gives the option's name, its --flag-name, its FLAG_SIDECAR_NAME environment
variable and its config-file key; `option` records the parser, default, metavar and help. The
composition root (sidecar.app.settings) makes one Settings class of every component's dataclass,
and sidecar.config reads the options of that class from the command line, the environment and
the config file.

This module imports nothing of the sidecar: every layer may declare options with it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "FLAG_SIDECAR_"
UNIX_PREFIX = "unix:"

RawValue = str | Sequence[str]

_OPTION = "flag_sidecar.option"  # the key of a dataclass field's metadata that holds its Option


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the option and where it came from."""


# ---------------------------------------------------------------- declaring


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


def option(
    parse: Callable[[str], Any],
    default: Any,
    metavar: str,
    help: str,
    *,
    multiple: bool = False,
    separator: str = ",",
    in_file: bool = True,
) -> Any:
    """A dataclass field that is an option (see the module docstring). `default` is a parsed value."""
    declared = Option("", parse, default, metavar, help, multiple, separator, in_file)
    return dataclasses.field(default=default, metadata={_OPTION: declared})


def declared_options(settings_type: type) -> tuple[Option, ...]:
    """The options of a dataclass made of `option` fields, in field order, each with its name."""
    return tuple(
        dataclasses.replace(field.metadata[_OPTION], name=field.name)
        for field in dataclasses.fields(settings_type)
        if _OPTION in field.metadata
    )


# ---------------------------------------------------------------- layers


@dataclass(frozen=True)
class Layer:
    """Raw (unparsed) values from one source, and how to name that source in an error."""

    values: Mapping[str, RawValue]
    describe: Callable[[Option], str]


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
