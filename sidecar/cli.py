"""The `flag-sidecar` command: `serve` a flag file over gRPC, `validate` one, or print the
effective configuration (`config --print`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from difflib import get_close_matches
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import sidecar.quiet_grpc  # noqa: F401  # first: it must run before grpc is imported
from sidecar import config
from sidecar.config_file import render_effective
from sidecar.engine import FlagSetError
from sidecar.events import PipelineConfig, SpecError, SpoolLockedError, build_pipeline
from sidecar.logging_setup import configure_logging
from sidecar.server.app import SidecarServer
from sidecar.server.flagd import FlagdSettings
from sidecar.server.health_listener import HealthServer
from sidecar.server.limits import ContextLimits
from sidecar.server.listeners import TlsFiles
from sidecar.server.management import ManagementServer
from sidecar.server.metrics import SidecarMetrics
from sidecar.store import FileRepository, FlagStore, load_flag_file

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
    try:
        settings, sources = config.load_settings_with_sources(args)
        if args.command == "config":
            if not args.print:
                parser.exit(
                    2, "flag-sidecar config: nothing to do; use `flag-sidecar config --print [OPTIONS]`\n"
                )
            sys.stdout.write(render_effective(settings, sources))
            return 0
        flags_path: Path = config.require(settings, "flags")
    except config.ConfigError as error:
        # 2, like any other bad argument
        parser.exit(2, f"flag-sidecar {args.command}: error: {error}\n")
    return serve(settings, flags_path)


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


def package_version() -> str:
    try:
        return metadata.version("flag-sidecar")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> Parser:
    parser = Parser(prog="flag-sidecar", description="Feature-flag evaluation sidecar (gRPC on localhost).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="serve a flag file over gRPC",
        description="Serve a flag file over gRPC. Every option can also be set by its environment "
        f"variable ({config.ENV_PREFIX}<NAME>) or as a key of the --config file; a command-line "
        "flag wins over the environment, which wins over the file.",
    )
    config.add_options(serve_parser)
    config_parser = commands.add_parser(
        "config",
        help="print the effective configuration",
        description="Resolve the options exactly as `serve` would and print the result as YAML "
        "(usable as a --config file), each value with where it came from.",
    )
    config_parser.add_argument("--print", action="store_true", help="print the effective configuration")
    config.add_options(config_parser)
    validate_parser = commands.add_parser(
        "validate", help="check a flag file and list every problem", description="Check a flag file."
    )
    validate_parser.add_argument("path", type=Path, help="flag file (YAML or JSON)")
    parser.commands.update(serve=serve_parser, config=config_parser, validate=validate_parser)
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
    configure_logging(
        settings.log_level,
        settings.log_format,
        repeat_limit=settings.log_repeat_limit,
        repeat_interval=settings.log_repeat_interval,
    )
    stop_requested = StopRequest()
    stop_requested.install()  # before loading, so an early SIGTERM still means a clean exit

    store = FlagStore(
        FileRepository(flags_path), cache_ttl=settings.cache_ttl, eval_cache_size=settings.eval_cache_size
    )
    metrics = SidecarMetrics(store)
    # Up before the flags load: /healthz answers and /readyz says why it is not ready yet.
    management = (
        ManagementServer(
            settings.management_listen,
            store=store,
            registry=metrics.registry,
            max_connections=settings.management_max_connections,
            read_timeout=settings.management_timeout,
        )
        if settings.management_listen
        else None
    )
    try:
        if management is not None:
            management.start()
    except OSError as error:
        logger.error("not serving: %s", error)
        return 1

    try:
        events = build_pipeline(_pipeline_config(settings))
    except (SpecError, SpoolLockedError, OSError) as error:
        logger.error("not serving: %s", error)
        _stop_management(management)
        return 1
    metrics.add_exporter_counters(events.stats)
    metrics.add_event_rejections(events.rejections)
    metrics.add_export_errors(events.export_errors)
    events.start()  # replays what the spool kept from the last run

    try:
        store.start()
    except FlagSetError as error:
        # One log record (a JSON line in JSON mode) with the problems as a list, not plain text
        # between the JSON lines; the text format spells them out one per line.
        problems = [str(problem) for problem in error.problems]
        logger.error(
            "not serving: %s has %s:\n%s",
            flags_path,
            plural(len(problems), "problem"),
            "\n".join(problems),
            extra={"event": "flags_rejected", "problems": problems},
        )
        events.close(0)
        _stop_management(management)
        return 1
    except OSError as error:
        logger.error("not serving: cannot read flag file %s: %s", flags_path, error.strerror or error)
        events.close(0)
        _stop_management(management)
        return 1

    server = SidecarServer(
        store,
        # --flagd-listen is one more listener (flagd providers default to port 8013), same services.
        (*settings.listen, settings.flagd_listen) if settings.flagd_listen else settings.listen,
        tls=_tls_files(settings),
        max_request_bytes=settings.max_request_bytes,
        max_concurrent_calls=settings.max_concurrent_calls,
        handshake_timeout=settings.handshake_timeout,
        metrics=metrics,
        context_limits=ContextLimits(
            settings.max_context_keys,
            settings.max_context_bytes,
            max_flag_key_bytes=settings.max_flag_key_bytes,
            max_evaluate_all_keys=settings.max_evaluate_all_keys,
            max_response_bytes=settings.max_response_bytes,
        ),
        events=events,
        # Checked when the options were parsed (config.parse_context_value / parse_header_mapping).
        flagd=FlagdSettings.from_options(settings.context_value or (), settings.context_from_header or ()),
    )
    # --health-listen: the same health statuses on a port of their own, for Kubernetes grpc
    # probes; started first, so a port in use there stops us before anything serves flags.
    health_server = HealthServer(server.health, settings.health_listen) if settings.health_listen else None
    try:
        if health_server is not None:
            health_server.start()
        server.start()
    except OSError as error:
        logger.error("not serving: %s", error)
        _stop_health(health_server)
        store.close()
        events.close(0)
        _stop_management(management)
        return 1
    if management is not None:
        management.mark_serving()

    stop_requested.wait(on_reload=lambda: _reload_on_signal(store))
    stop_requested.restore_defaults()  # a second Ctrl-C or SIGTERM kills at once
    # Events go out after the calls have drained, within --events-flush-timeout; the rest is spooled.
    return shutdown(
        settings,
        stop_requested.signal_name,
        server,
        store,
        management,
        flushers=[lambda left: events.close(min(settings.events_flush_timeout, left))],
        health_server=health_server,
    )


def _reload_on_signal(store: FlagStore) -> None:
    logger.info("received SIGHUP: reloading the flag file", extra={"event": "reload_requested"})
    store.reload()  # logs what it applied, or why it kept the last good set


def _pipeline_config(settings: config.Settings) -> PipelineConfig:
    if settings.exporter and settings.spool_dir is None:
        logger.warning(
            "no --spool-dir: events an exporter cannot take yet are kept in memory only, and lost "
            "(counted and logged) on a crash, or past the memory buffer during an outage"
        )
    return PipelineConfig(
        exporters=settings.exporter or (),
        flush_interval=settings.flush_interval,
        max_events_in_memory=settings.max_events_in_memory,
        buffer_bytes=settings.events_buffer_bytes,
        max_details_bytes=settings.max_event_details_bytes,
        spool_dir=settings.spool_dir,
        spool_max_bytes=settings.spool_max_bytes,
        events_on_evaluate_all=settings.events_on_evaluate_all,
        shutdown_grace=settings.events_flush_timeout,
    )


def shutdown(
    settings: config.Settings,
    reason: str,
    server: SidecarServer,
    store: FlagStore,
    management: ManagementServer | None,
    flushers: Sequence[Callable[[float], None]] = (),
    health_server: HealthServer | None = None,
) -> int:
    """Readiness off and health NOT_SERVING (all but `liveness`) first, then refuse new calls and
    let in-flight ones finish (up to --shutdown-grace), then flush what is left, all before
    --shutdown-timeout.

    `flushers` get the seconds left before the deadline (the event pipeline's `close(grace)`):
    they run after the drain, so the events of the last calls are flushed too. The health
    listener stops last, with the management listener: its `liveness` stays SERVING (and its
    readiness NOT_SERVING) for the whole sequence."""
    began = time.monotonic()
    deadline = began + settings.shutdown_timeout
    watchdog = threading.Timer(
        settings.shutdown_timeout, _deadline_exceeded, args=(settings.shutdown_timeout,)
    )
    watchdog.daemon = True
    watchdog.start()
    logger.info(
        "received %s: shutting down (up to %gs for in-flight calls, exit within %gs)",
        reason,
        settings.shutdown_grace,
        settings.shutdown_timeout,
        extra={"event": "shutdown_started", "signal": reason},
    )
    if management is not None:
        management.begin_shutdown()
    server.stop(min(settings.shutdown_grace, max(0.0, deadline - time.monotonic())))
    for flush in flushers:
        # Keep a little of the budget for the last log lines and the exit itself.
        flush(max(0.0, deadline - time.monotonic() - 0.5))
    store.close()
    _stop_health(health_server)
    _stop_management(management)
    # Keep a little of the budget, as for the flushers, for the last log lines and the exit itself.
    handlers_done = server.join_handlers(max(0.0, deadline - time.monotonic() - 0.5))
    watchdog.cancel()
    if not handlers_done:
        # Calls cancelled at the end of the grace whose handlers still run: nobody will receive
        # their answers, and a normal exit would wait for them past --shutdown-timeout.
        logger.warning(
            "not waiting for the handlers of cancelled calls", extra={"event": "shutdown_handlers_abandoned"}
        )
    elapsed = time.monotonic() - began
    logger.info(
        "stopped after %.2fs", elapsed, extra={"event": "shutdown_complete", "seconds": round(elapsed, 3)}
    )
    if not handlers_done:
        logging.shutdown()
        os._exit(0)
    return 0


def _deadline_exceeded(timeout: float) -> None:
    logger.error(
        "shutdown did not finish within %gs (--shutdown-timeout): exiting now",
        timeout,
        extra={"event": "shutdown_deadline_exceeded"},
    )
    logging.shutdown()
    os._exit(1)


def _stop_management(management: ManagementServer | None) -> None:
    if management is not None:
        management.stop()


def _stop_health(health_server: HealthServer | None) -> None:
    if health_server is not None:
        health_server.stop()


def _tls_files(settings: config.Settings) -> TlsFiles | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca)


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
