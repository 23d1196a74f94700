"""The config-file layer (--config, YAML) and the `config --print` rendering of effective settings.

Keys are option names (`cache_ttl`, or `cache-ttl` as on the command line); values are what the
flag would take, with YAML lists for options that take several. The whole file is checked before
anything starts: every unknown key (with a did-you-mean) and every mapping where a value belongs
is reported in one message, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .options import ConfigError, Layer, Option, RawValue


def file_layer(path: Path, options: Sequence[Option]) -> Layer:
    """Read `path` into a Layer for `options`. Raises ConfigError naming the file and every bad key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    import yaml  # here, not at the top: a sidecar started without a config file never needs PyYAML

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"config file {path}: expected a mapping of option names to values, not {type(document).__name__}"
        )
    by_name = {option.name: option for option in options}
    values: dict[str, RawValue] = {}
    problems: list[str] = []
    for key, value in document.items():
        name = str(key).replace("-", "_")
        option = by_name.get(name)
        if option is None or not option.in_file:
            problems.append(_unknown_key(str(key), options))
        elif name in values:
            problems.append(f"key {key!r}: {name} is set twice")
        elif value is not None:  # `key:` with no value, or null, leaves the option unset
            try:
                values[name] = _raw(value)
            except ValueError as error:
                problems.append(f"key {key!r}: {error}")
    if problems:
        raise ConfigError(f"config file {path}: " + "; ".join(problems))
    return Layer(values, lambda option: f"config file {path}, key {option.name}")


def _unknown_key(key: str, options: Sequence[Option]) -> str:
    names = [option.name for option in options if option.in_file]
    if key.replace("-", "_") == "config":
        return "key 'config' cannot be set in a config file (use --config or FLAG_SIDECAR_CONFIG)"
    import difflib  # only to word this error: not loaded by a sidecar that starts cleanly

    close = difflib.get_close_matches(key.replace("-", "_").lower(), names, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key!r}; known keys: {', '.join(names)}"


def _raw(value: Any) -> RawValue:
    """A YAML value as the text a command-line flag would carry (lists stay lists)."""
    if isinstance(value, list):
        return [_scalar(item) for item in value]
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"expected a value or a list of values, not a {type(value).__name__}")


# ---------------------------------------------------------------- config --print


def render_effective(settings: Any, sources: Mapping[str, str], options: Sequence[Option]) -> str:
    """The effective `settings` (a dataclass with a field per option) as YAML that works as a
    --config file, each line saying its source."""
    lines = [
        "# Effective flag-sidecar configuration.",
        "# Precedence: command-line flag > environment variable > config file > default.",
    ]
    if getattr(settings, "config", None) is not None:
        lines.append(f"# Config file: {settings.config} (from {sources['config']})")
    import yaml

    for option in options:
        if not option.in_file:
            continue
        value = _file_value(option, getattr(settings, option.name))
        dumped = yaml.safe_dump({option.name: value}, default_flow_style=False, sort_keys=False, width=10**6)
        first, *rest = dumped.rstrip("\n").split("\n")
        lines.append(f"{first}  # {sources[option.name]}")
        lines.extend(rest)
    return "\n".join(lines) + "\n"


def _file_value(option: Option, value: Any) -> Any:
    if isinstance(value, tuple):
        return [_file_value(option, item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if value == "" and option.name.endswith("listen"):
        return "off"
    return value
