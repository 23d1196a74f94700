"""The `flag-sidecar` command: `serve` a flag file over gRPC, `validate` one, print the
effective configuration (`config --print`), bring a flag database's schema up to date (`migrate`),
move a flag set between a flag file and a database (`flags import`, `flags export`), and write a
flag file in the other format (`flags convert`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from difflib import get_close_matches
from pathlib import Path
from types import FrameType
from typing import Any

import sidecar.quiet_grpc  # noqa: F401  # first: it must run before grpc is imported
from sidecar import package_version
from sidecar.app import flag_database_commands, plural
from sidecar.app import settings as app_settings
from sidecar.app.runtime import Runtime, StartFailed
from sidecar.app.settings import Settings
from sidecar.logging_setup import configure_logging
from sidecar.options import ENV_PREFIX, ConfigError
from sidecar.sources import Source

logger = logging.getLogger("sidecar")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNAL = signal.SIGHUP  # re-read the flag file (README "Stopping"); never stops the process


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # The subcommand's own usage and a suggestion, not the top-level usage argparse would print.
        command = parser.commands[args.command]
        command.error(unrecognized(unknown, command.option_names))
    if args.command == "validate":
        return validate(args.path)
    if args.command in ("migrate", "flags"):
        return flag_database_commands.run(args, parser.commands[args.command])
    try:
        settings, sources = app_settings.load_settings_with_sources(args)
        if args.command == "config":
            if not args.print:
                parser.exit(
                    2, "flag-sidecar config: nothing to do; use `flag-sidecar config --print [OPTIONS]`\n"
                )
            sys.stdout.write(app_settings.render_effective(settings, sources))
            return 0
        if settings.source is None:
            app_settings.require(settings, "flags")  # --source is the long form, --flags the usual one
    except ConfigError as error:
        # 2, like any other bad argument
        parser.exit(2, f"flag-sidecar {args.command}: error: {error}\n")
    return serve(settings)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that keeps its option strings (for suggestions) and its subcommands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.option_names: list[str] = []  # before super().__init__, which adds -h/--help
        self.commands: dict[str, Parser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.option_names.extend(action.option_strings)
        return action


def unrecognized(arguments: Sequence[str], option_names: Sequence[str]) -> str:
    """argparse's "unrecognized arguments" message, with the closest known option for each."""
    parts = []
    for argument in arguments:
        name = argument.split("=", 1)[0]
        close = get_close_matches(name, option_names, n=1) if name.startswith("-") else []
        parts.append(f"{argument} (did you mean {close[0]}?)" if close else argument)
    return f"unrecognized arguments: {' '.join(parts)}"


class _Version(argparse.Action):
    """--version, with the version looked up only when it is asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"{parser.prog} {package_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser() -> Parser:
    parser = Parser(prog="flag-sidecar", description="Feature-flag evaluation sidecar (gRPC on localhost).")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="serve a flag file over gRPC",
        description="Serve a flag file over gRPC. Every option can also be set by its environment "
        f"variable ({ENV_PREFIX}<NAME>) or as a key of the --config file; a command-line "
        "flag wins over the environment, which wins over the file.",
    )
    app_settings.add_options(serve_parser)
    config_parser = commands.add_parser(
        "config",
        help="print the effective configuration",
        description="Resolve the options exactly as `serve` would and print the result as YAML "
        "(usable as a --config file), each value with where it came from.",
    )
    config_parser.add_argument("--print", action="store_true", help="print the effective configuration")
    app_settings.add_options(config_parser)
    validate_parser = commands.add_parser(
        "validate", help="check a flag file and list every problem", description="Check a flag file."
    )
    validate_parser.add_argument("path", type=Path, help="flag file (YAML or JSON)")
    parser.commands.update(serve=serve_parser, config=config_parser, validate=validate_parser)
    parser.commands.update(flag_database_commands.add_commands(commands, Parser))
    return parser


# ---------------------------------------------------------------- validate


def validate(path: Path) -> int:
    """Print every problem (exit 1) or a one-line summary (exit 0); warnings either way."""
    flag_set = flag_database_commands.load_checked(path, "flag file rejected")
    if flag_set is None:
        return 1
    for warning in flag_set.warnings:
        print(f"warning: {warning}")
    flags, segments = plural(len(flag_set.flags), "flag"), plural(len(flag_set.segments), "segment")
    print(f"OK: {path}: {flags}, {segments}")
    return 0


# ---------------------------------------------------------------- serve


def serve(settings: Settings, source: Source | None = None) -> int:
    """Start the runtime, serve until SIGTERM/SIGINT, shut down. The exit code: 0 after a clean
    shutdown, 1 when a component does not start (or the shutdown overruns --shutdown-timeout)."""
    configure_logging(
        settings.log_level,
        settings.log_format,
        repeat_limit=settings.log_repeat_limit,
        repeat_interval=settings.log_repeat_interval,
    )
    stop_requested = StopRequest()
    stop_requested.install()  # before loading, so an early SIGTERM still means a clean exit
    with Runtime(settings, source) as runtime:
        try:
            runtime.start()
        except StartFailed:
            return 1  # logged, and what had started is stopped
        stop_requested.wait(on_reload=runtime.reload)
        stop_requested.restore_defaults()  # a second Ctrl-C or SIGTERM kills at once
        return runtime.shutdown(stop_requested.signal_name)


class StopRequest:
    """SIGTERM/SIGINT set an event in the handler and nothing more; the main thread does the work.
    SIGHUP asks for a flag reload the same way: from install() on, so that a SIGHUP at any moment
    (during startup or shutdown too) never kills the process, as its default action would."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._wake = threading.Event()
        self._reload = False
        self._signal: int | None = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)
        signal.signal(RELOAD_SIGNAL, self._handle_reload)

    def restore_defaults(self) -> None:
        # Only the stop signals: a SIGHUP during shutdown is still caught, and ignored.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)

    def wait(self, on_reload: Callable[[], None] | None = None) -> None:
        """Return once a stop is requested; call `on_reload` (in this thread) for each SIGHUP."""
        while not self._event.is_set():
            # A timeout keeps the main thread returning to the interpreter, where signal handlers run.
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._reload and not self._event.is_set():
                self._reload = False
                if on_reload is not None:
                    try:
                        on_reload()
                    except Exception:
                        logger.exception("reload on SIGHUP failed; still serving the last good flag set")

    @property
    def signal_name(self) -> str:
        return signal.Signals(self._signal).name if self._signal is not None else "stop request"

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._signal = signum
        self._event.set()
        self._wake.set()

    def _handle_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload = True
        self._wake.set()


if __name__ == "__main__":
    sys.exit(main())
