"""The `flag-sidecar` command: `serve` a flag file over gRPC, or `validate` one."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from sidecar import config
from sidecar.engine import FlagSetError
from sidecar.server.app import SidecarServer
from sidecar.store import FileRepository, FlagStore, load_flag_file

logger = logging.getLogger("sidecar")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "validate":
        return validate(args.path)
    try:
        settings = config.load_settings(args)
        flags_path: Path = config.require(settings, "flags")
    except config.ConfigError as error:
        parser.exit(2, f"flag-sidecar serve: error: {error}\n")  # 2, like any other bad argument
    return serve(settings, flags_path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flag-sidecar", description="Feature-flag evaluation sidecar (gRPC on localhost)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="serve a flag file over gRPC",
        description="Serve a flag file over gRPC. Every option can also be set by its environment "
        f"variable ({config.ENV_PREFIX}<NAME>); a command-line flag wins over the environment.",
    )
    config.add_options(serve_parser)
    validate_parser = commands.add_parser(
        "validate", help="check a flag file and list every problem", description="Check a flag file."
    )
    validate_parser.add_argument("path", type=Path, help="flag file (YAML or JSON)")
    return parser


# ---------------------------------------------------------------- validate


def validate(path: Path) -> int:
    """Print every problem (exit 1) or a one-line summary (exit 0); warnings either way."""
    try:
        flag_set = load_flag_file(path)
    except FlagSetError as error:
        for problem in error.problems:
            print(problem)
        print(f"{path}: {plural(len(error.problems), 'problem')}, flag file rejected", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror or error}", file=sys.stderr)
        return 1
    for warning in flag_set.warnings:
        print(f"warning: {warning}")
    flags, segments = plural(len(flag_set.flags), "flag"), plural(len(flag_set.segments), "segment")
    print(f"OK: {path}: {flags}, {segments}")
    return 0


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------- serve


def serve(settings: config.Settings, flags_path: Path) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop_requested = StopRequest()
    stop_requested.install()  # before loading, so an early SIGTERM still means a clean exit

    store = FlagStore(FileRepository(flags_path), cache_ttl=settings.cache_ttl)
    try:
        store.start()
    except FlagSetError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        logger.error(
            "not serving: %s has %s, listed above", flags_path, plural(len(error.problems), "problem")
        )
        return 1
    except OSError as error:
        logger.error("not serving: cannot read flag file %s: %s", flags_path, error.strerror or error)
        return 1

    server = SidecarServer(store, settings.listen)
    try:
        server.start()
    except OSError as error:
        logger.error("not serving: %s", error)
        store.close()
        return 1

    stop_requested.wait()
    stop_requested.restore_defaults()  # a second Ctrl-C or SIGTERM kills at once
    logger.info("received %s", stop_requested.signal_name)
    server.stop(settings.shutdown_grace)
    store.close()
    logger.info("stopped")
    return 0


class StopRequest:
    """SIGTERM/SIGINT set an event in the handler and nothing more; the main thread does the work."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._signal: int | None = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def restore_defaults(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)

    def wait(self) -> None:
        # A timeout keeps the main thread returning to the interpreter, where signal handlers run.
        while not self._event.wait(timeout=1.0):
            pass

    @property
    def signal_name(self) -> str:
        return signal.Signals(self._signal).name if self._signal is not None else "stop request"

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._signal = signum
        self._event.set()


if __name__ == "__main__":
    sys.exit(main())
