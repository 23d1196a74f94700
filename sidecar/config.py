"""Settings from command-line flags, environment, config file and defaults, for a table of options.

The options are declared by the components that use them (sidecar.options explains how) and put
together by the composition root (sidecar.app.settings) into one Settings class; an
`OptionTable` made of that class generates the argparse flags, reads the FLAG_SIDECAR_<NAME>
environment variables and the config-file keys, and prints the result (`config --print`).
Resolution walks a list of layers, first hit wins: [command line, environment, config file],
then the default. Every value is parsed by the option's own parser whatever layer it came from,
so a bad value is rejected at start with the option and its source in the message.

An option with `multiple=True` takes several values: a repeated flag, a list in the file, or
one environment variable split on the option's `separator`.

This module knows no component: it imports only sidecar.options and sidecar.config_file.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from .config_file import file_layer, render_effective
from .options import ConfigError, Layer, Option, RawValue, declared_options, parse_path, parse_value
from .options import option as option_field  # `option` names the loop variables below

__all__ = ["ConfigError", "ConfigFileOptions", "Layer", "Option", "OptionTable"]

S = TypeVar("S")


@dataclass(frozen=True)
class ConfigFileOptions:
    """The option this module itself uses: which config file is the third layer."""

    config: Path | None = option_field(
        parse_path, None, "PATH", "YAML file setting any option below (keys = option names)", in_file=False
    )


class OptionTable(Generic[S]):
    """The options of `settings_type` (a frozen dataclass of `option` fields, ConfigFileOptions
    among its bases), and how to read them. `check(settings, sources)` enforces the rules between
    options (raises ConfigError); `sources` says where each value came from."""

    def __init__(
        self,
        settings_type: type[S],
        check: Callable[[S, Mapping[str, str]], None] | None = None,
    ) -> None:
        self.settings_type = settings_type
        self.options = declared_options(settings_type)
        self.by_name: dict[str, Option] = {o.name: o for o in self.options}
        if "config" not in self.by_name:
            raise TypeError(f"{settings_type.__name__} has no `config` option (ConfigFileOptions)")
        self._check = check

    def option_named(self, name: str) -> Option:
        return self.by_name[name]

    # ------------------------------------------------------------ layers

    def command_line_layer(self, namespace: argparse.Namespace) -> Layer:
        given = {
            o.name: value for o in self.options if (value := getattr(namespace, o.name, None)) is not None
        }
        return Layer(given, lambda option: f"command-line flag {option.flag}")

    def environment_layer(self, environ: Mapping[str, str]) -> Layer:
        # An empty variable counts as unset, as `FOO=` in a compose file or Kubernetes manifest means.
        given: dict[str, RawValue] = {}
        for option in self.options:
            text = environ.get(option.env_var)
            if text:
                given[option.name] = text.split(option.separator) if option.multiple else text
        return Layer(given, lambda option: f"environment variable {option.env_var}")

    def layers_for(self, namespace: argparse.Namespace, environ: Mapping[str, str]) -> list[Layer]:
        """[command line, environment, config file (if --config or FLAG_SIDECAR_CONFIG names one)]."""
        layers = [self.command_line_layer(namespace), self.environment_layer(environ)]
        config_option = self.option_named("config")
        for layer in layers:
            if "config" in layer.values:
                raw = layer.values["config"]
                try:
                    path = parse_value(config_option, raw)
                except ValueError as error:
                    source = layer.describe(config_option)
                    raise ConfigError(f"invalid config {raw!r} (from {source}): {error}") from None
                layers.append(file_layer(path, self.options))
                break
        return layers

    # ------------------------------------------------------------ resolution

    def resolve_with_sources(self, layers: Sequence[Layer]) -> tuple[S, dict[str, str]]:
        """Settings, and for each option where its value came from ("default" or the layer's name)."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for option in self.options:
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
        settings = self.settings_type(**values)
        if self._check is not None:
            self._check(settings, sources)
        return settings, sources

    def resolve(self, layers: Sequence[Layer]) -> S:
        """The first layer that sets an option wins; otherwise its default. Raises ConfigError."""
        return self.resolve_with_sources(layers)[0]

    def load_settings(self, namespace: argparse.Namespace, environ: Mapping[str, str] | None = None) -> S:
        return self.load_settings_with_sources(namespace, environ)[0]

    def load_settings_with_sources(
        self, namespace: argparse.Namespace, environ: Mapping[str, str] | None = None
    ) -> tuple[S, dict[str, str]]:
        environ = os.environ if environ is None else environ
        return self.resolve_with_sources(self.layers_for(namespace, environ))

    def require(self, settings: S, name: str) -> Any:
        """The value of an option that this command cannot do without. Raises ConfigError."""
        value = getattr(settings, name)
        if value is None:
            option = self.option_named(name)
            raise ConfigError(
                f"{name} is required: pass {option.flag} {option.metavar} or set {option.env_var}"
                f" (or `{name}:` in the --config file)"
            )
        return value

    # ------------------------------------------------------------ command line and output

    def add_options(self, parser: argparse.ArgumentParser, exclude: Sequence[str] = ()) -> None:
        """Add a --flag for every option. Values stay raw strings; `resolve` parses them all alike."""
        for option in self.options:
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

    def render(self, settings: S, sources: Mapping[str, str]) -> str:
        """`config --print`: the effective settings as a config file, each with its source."""
        return render_effective(settings, sources, self.options)


def _show_default(default: Any) -> str:
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)
    return str(default) if default != "" else "off"
