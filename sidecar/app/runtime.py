"""The runtime of `flag-sidecar serve`: builds the components from the settings, starts them in
order, and stops them.

Start order (STARTUP): the management listener (so that /healthz answers and /readyz says why it
is not ready while the flags load), the event pipeline (it replays what its spool kept), the flag
store (takes --state-dir, loads the flags, follows the source), the health listener (a port in
use there stops us before anything serves flags), the gRPC server, the flagd Connect listener
(--flagd-connect-listen; it serves the gRPC server's flagd services), the sync listener
(--sync-listen; it streams the flag set the store has loaded), the admin listener (writes come
last, and stop first).

Each component that starts is pushed on an ExitStack: when a later one fails to start, or on any
exception, the stack stops exactly the components that started, in reverse order, each once. On
SIGTERM/SIGINT, `shutdown` runs the declared sequence (SHUTDOWN) within --shutdown-timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from sidecar.app import plural
from sidecar.app.settings import Settings
from sidecar.engine import FlagSetError
from sidecar.events import EventPipeline, PipelineConfig, SpecError, SpoolLockedError, build_pipeline
from sidecar.server.app import SidecarServer
from sidecar.server.flagd import FlagdSettings
from sidecar.server.health_listener import HealthServer
from sidecar.server.limits import ContextLimits
from sidecar.server.listeners import TlsFiles
from sidecar.server.management import ManagementServer
from sidecar.server.metrics import SidecarMetrics
from sidecar.server.streams import StreamLimits
from sidecar.sources import FileSource, Source, open_database, open_source
from sidecar.store import FlagStore, StateDirError

if TYPE_CHECKING:  # imported where they start: a sidecar without these listeners never loads them
    from sidecar.server.admin_server import AdminServer
    from sidecar.server.flagd.connect import FlagdConnectListener
    from sidecar.server.sync import SyncServer

logger = logging.getLogger("sidecar")

STARTUP = ("management", "events", "store", "health", "server", "connect", "sync", "admin")
# Readiness off comes first (management.begin_shutdown, and the server's own first step), then
# the drain, then the flush of the events of the last calls; the health listener stops after the
# store, with the management listener, so that its `liveness` stays SERVING throughout. Writes stop
# first; then the sync listener: its Watch streams end at once (their clients reconnect elsewhere
# or later). The flagd Connect listener stops after the server's drain: the server's first step
# ends every EventStream (both listeners'), and its unary calls are answered meanwhile.
SHUTDOWN = ("admin", "sync", "server", "connect", "events", "store", "health", "management")
# Kept from the shutdown budget for the last log lines and the exit itself.
_EXIT_MARGIN = 0.5


class StartFailed(Exception):
    """A component did not start. The reason is logged; what had started is stopped."""


def flag_source(settings: Settings) -> Source:
    """--source URI, or --flags PATH (a file source, the path kept as given for messages)."""
    if settings.source is not None:
        return open_source(settings.source, settings)  # checked when the options were parsed
    if settings.flags is None:
        raise ValueError("no --flags or --source")  # cli.main requires one
    return FileSource(settings.flags)


class Runtime:
    """The components of one `serve` process. Use as a context manager: leaving it stops what is
    still running (after a failed start, an exception, or a shutdown that did not get that far)."""

    def __init__(self, settings: Settings, source: Source | None = None) -> None:
        self.settings = settings
        self.source = flag_source(settings) if source is None else source
        self.store = FlagStore(
            self.source,
            cache_ttl=settings.cache_ttl,
            eval_cache_size=settings.eval_cache_size,
            state_dir=settings.state_dir,
            # Anything but a local file can be unreachable: keep a last-known-good copy of it.
            remote=not isinstance(self.source, FileSource),
        )
        self.metrics = SidecarMetrics(self.store)
        self.management: ManagementServer | None = None
        self.events: EventPipeline | None = None
        self.health: HealthServer | None = None
        self.server: SidecarServer | None = None
        self.sync: SyncServer | None = None
        self.connect: FlagdConnectListener | None = None
        self.admin: AdminServer | None = None
        self.started: list[str] = []  # component names, in the order they started
        self.stopped: list[str] = []  # and in the order they stopped
        self._stops: dict[str, Callable[[], None]] = {}
        self._stack = contextlib.ExitStack()
        self._deadline: float | None = None  # monotonic; set when the shutdown sequence begins

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ start

    def start(self) -> None:
        """Start every component in STARTUP order. Raises StartFailed (logged) after stopping,
        in reverse order, the ones that had started."""
        steps: dict[str, Callable[[], Callable[[], None] | None]] = {
            "management": self._start_management,
            "events": self._start_events,
            "store": self._start_store,
            "health": self._start_health,
            "server": self._start_server,
            "connect": self._start_connect,
            "sync": self._start_sync,
            "admin": self._start_admin,
        }
        try:
            for name in STARTUP:
                stop = steps[name]()
                if stop is not None:  # None: the component is off (--management-listen off, ...)
                    self.started.append(name)
                    self._stops[name] = stop
                    self._stack.callback(self._stop, name)
        except BaseException:
            self.close()
            raise
        if self.management is not None and self.server is not None:
            self.management.mark_serving(liveness=self.server.liveness_problem)

    def _start_management(self) -> Callable[[], None] | None:
        settings = self.settings
        if not settings.management_listen:
            return None
        management = ManagementServer(
            settings.management_listen,
            store=self.store,
            registry=self.metrics.registry,
            max_connections=settings.management_max_connections,
            read_timeout=settings.management_timeout,
        )
        try:
            management.start()
        except OSError as error:
            raise _not_serving("%s", error) from error
        self.management = management
        return management.stop

    def _start_events(self) -> Callable[[], None]:
        try:
            events = build_pipeline(self._pipeline_config())
        except (SpecError, SpoolLockedError, OSError) as error:
            raise _not_serving("%s", error) from error
        self.metrics.add_exporter_counters(events.stats)
        self.metrics.add_event_rejections(events.rejections)
        self.metrics.add_export_errors(events.export_errors)
        self.events = events
        # Before start(): a scheduler that started before a failure is closed too.
        stop = self._close_events
        try:
            events.start()  # replays what the spool kept from the last run
        except BaseException:
            stop()
            raise
        return stop

    def _start_store(self) -> Callable[[], None]:
        store, source = self.store, self.source
        if store.remote and self.settings.state_dir is None:
            logger.warning(
                "no --state-dir: a restart while %s is down cannot serve the last known good flag set",
                source.origin,
            )
        try:
            store.start()
        except StateDirError as error:
            store.close()
            raise _not_serving("%s", error) from error
        except FlagSetError as error:
            store.close()  # releases --state-dir, taken before the flags were read
            # One log record (a JSON line in JSON mode) with the problems as a list, not plain text
            # between the JSON lines; the text format spells them out one per line.
            problems = [str(problem) for problem in error.problems]
            raise _not_serving(
                "%s has %s:\n%s",
                source.origin,
                plural(len(problems), "problem"),
                "\n".join(problems),
                extra={"event": "flags_rejected", "problems": problems},
            ) from error
        except OSError as error:
            store.close()
            raise _not_serving("cannot read %s: %s", _described(source), error.strerror or error) from error
        except BaseException:
            store.close()
            raise
        return store.close

    def _start_health(self) -> Callable[[], None] | None:
        # The server is built here (its health servicer is what this listener serves) and started
        # next, once the health listener holds its port.
        self.server = self._build_server()
        if not self.settings.health_listen:
            return None
        health = HealthServer(self.server.health, self.settings.health_listen, self._stream_limits())
        self.metrics.add_stream_stats(health.streams.stats)
        try:
            health.start()
        except OSError as error:
            raise _not_serving("%s", error) from error
        self.health = health
        return health.stop

    def _start_server(self) -> Callable[[], None]:
        assert self.server is not None  # built by _start_health
        try:
            self.server.start()
        except OSError as error:
            raise _not_serving("%s", error) from error
        return self._stop_server

    def _start_connect(self) -> Callable[[], None] | None:
        settings = self.settings
        if not settings.flagd_connect_listen:
            return None
        assert self.server is not None  # built by _start_health
        assert self.server.flagd_services is not None  # SERVICE_REGISTRARS has them
        try:  # the `connect` extra, imported only when this listener is on
            from sidecar.server.flagd.connect import FlagdConnectListener
        except ImportError as error:
            raise _not_serving(
                "--flagd-connect-listen needs the `connect` extra (pip install 'flag-sidecar[connect]'): %s",
                error,
            ) from error
        connect = FlagdConnectListener(
            self.server.flagd_services,
            self.server.streams,
            settings.flagd_connect_listen,
            max_request_bytes=settings.max_request_bytes,
            max_concurrent_calls=settings.max_concurrent_calls,
            tls=_tls_files(settings),
        )
        try:
            connect.start()
        except OSError as error:
            raise _not_serving("%s", error) from error
        self.connect = connect
        return self._stop_connect

    def _stop_connect(self) -> None:
        assert self.connect is not None
        self.connect.stop(min(1.0, self._left()))

    def _start_sync(self) -> Callable[[], None] | None:
        settings = self.settings
        if not settings.sync_listen:
            return None
        from sidecar.server.sync import SyncServer

        flagd = self._flagd_settings()
        sync = SyncServer(
            self.store,
            (settings.sync_listen,),
            tls=_tls_files(settings),
            stream_limits=StreamLimits(
                settings.sync_max_streams,
                settings.max_streams_per_connection,
                settings.stream_idle_timeout,
                max_streams_option="--sync-max-streams",
            ),
            metrics=self.metrics,
            handshake_timeout=settings.handshake_timeout,
            # flagd's sync protocol hands in-process providers the context the flagd services add.
            static_context=flagd.context.static_values,
            header_properties=frozenset(flagd.context.header_keys.values()),
        )
        try:
            sync.start()
        except OSError as error:
            raise _not_serving("%s", error) from error
        self.sync = sync
        return self._stop_sync

    def _stop_sync(self) -> None:
        assert self.sync is not None
        self.sync.stop(min(1.0, self._left()))

    def _start_admin(self) -> Callable[[], None] | None:
        settings = self.settings
        if not settings.admin_listen or settings.source is None:
            return None
        from sidecar.server.admin_access import AdminAccess
        from sidecar.server.admin_server import AdminServer
        from sidecar.store.admin import FlagAdmin

        try:
            access = AdminAccess.from_files(settings.admin_token_file, settings.tls_client_ca is not None)
        except (OSError, ValueError) as error:
            raise _not_serving("%s", error) from error
        # A database of its own (its own connection): the source's change counter then sees these
        # writes as any other process's.
        admin = AdminServer(
            FlagAdmin(open_database(settings.source)),
            settings.admin_listen,
            access,
            tls=_tls_files(settings),
            metrics=self.metrics,
        )
        try:
            admin.start()
        except (OSError, RuntimeError) as error:
            admin.stop()
            raise _not_serving("%s", error) from error
        self.admin = admin
        return self._stop_admin

    def _stop_admin(self) -> None:
        assert self.admin is not None
        self.admin.stop(min(self.settings.shutdown_grace, self._left()))

    def _build_server(self) -> SidecarServer:
        settings = self.settings
        return SidecarServer(
            self.store,
            # --flagd-listen is one more listener (flagd providers default to port 8013), same services.
            (*settings.listen, settings.flagd_listen) if settings.flagd_listen else settings.listen,
            tls=_tls_files(settings),
            max_request_bytes=settings.max_request_bytes,
            max_concurrent_calls=settings.max_concurrent_calls,
            handshake_timeout=settings.handshake_timeout,
            metrics=self.metrics,
            context_limits=ContextLimits(
                settings.max_context_keys,
                settings.max_context_bytes,
                max_flag_key_bytes=settings.max_flag_key_bytes,
                max_evaluate_all_keys=settings.max_evaluate_all_keys,
                max_response_bytes=settings.max_response_bytes,
            ),
            events=self.events,
            flagd=self._flagd_settings(),
            stream_limits=self._stream_limits(),
        )

    def _flagd_settings(self) -> FlagdSettings:
        settings = self.settings
        # Checked when the options were parsed (sidecar.server.settings).
        return FlagdSettings.from_options(settings.context_value or (), settings.context_from_header or ())

    def _stream_limits(self) -> StreamLimits:
        settings = self.settings
        return StreamLimits(
            settings.max_streams, settings.max_streams_per_connection, settings.stream_idle_timeout
        )

    def _pipeline_config(self) -> PipelineConfig:
        settings = self.settings
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

    # ------------------------------------------------------------ serving

    def reload(self) -> None:
        """SIGHUP: read the flags again (the store logs what it applied, or why it kept the last
        good set)."""
        if isinstance(self.source, FileSource):
            logger.info("received SIGHUP: reloading the flag file", extra={"event": "reload_requested"})
        else:
            logger.info(
                "received SIGHUP: fetching the flags from %s again",
                self.source.origin,
                extra={"event": "reload_requested"},
            )
        self.store.reload()

    # ------------------------------------------------------------ stop

    def shutdown(self, reason: str) -> int:
        """Readiness off and health NOT_SERVING (all but `liveness`) first, then refuse new calls
        and let in-flight ones finish (up to --shutdown-grace), then flush the events (within
        --events-flush-timeout), then close the store and the listeners, all before
        --shutdown-timeout; past it, exit 1 at once. Returns the exit code (0)."""
        settings = self.settings
        began = time.monotonic()
        self._deadline = began + settings.shutdown_timeout
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
        if self.management is not None:
            self.management.begin_shutdown()
        for name in SHUTDOWN:
            self._stop(name)
        self.close()  # nothing left: every started component is in SHUTDOWN
        handlers_done = self.server is None or self.server.join_handlers(self._left())
        watchdog.cancel()
        if not handlers_done:
            # Calls cancelled at the end of the grace whose handlers still run: nobody will receive
            # their answers, and a normal exit would wait for them past --shutdown-timeout.
            logger.warning(
                "not waiting for the handlers of cancelled calls",
                extra={"event": "shutdown_handlers_abandoned"},
            )
        elapsed = time.monotonic() - began
        logger.info(
            "stopped after %.2fs", elapsed, extra={"event": "shutdown_complete", "seconds": round(elapsed, 3)}
        )
        if not handlers_done:
            logging.shutdown()
            os._exit(0)
        return 0

    def close(self) -> None:
        """Stop, in reverse start order, whatever is still running (each component once)."""
        self._stack.close()

    def _stop(self, name: str) -> None:
        stop = self._stops.pop(name, None)
        if stop is None:  # off, never started, or already stopped
            return
        self.stopped.append(name)
        stop()

    def _left(self) -> float:
        """Seconds left of the shutdown budget, less the exit margin; 0 outside a shutdown (after
        a failed start nothing waits)."""
        if self._deadline is None:
            return 0.0
        return max(0.0, self._deadline - time.monotonic() - _EXIT_MARGIN)

    def _stop_server(self) -> None:
        assert self.server is not None
        if self._deadline is None:  # not a shutdown: no grace
            self.server.stop(0.0, timeout=1.0)
            return
        left = max(0.0, self._deadline - time.monotonic())
        grace = min(self.settings.shutdown_grace, left)
        # Bounded even if grpcio cannot stop (a wedged server): the flush still gets its turn.
        self.server.stop(grace, timeout=min(grace + 1.0, left))

    def _close_events(self) -> None:
        assert self.events is not None
        # After the drain, so the events of the last calls are flushed too; the rest is spooled.
        self.events.close(min(self.settings.events_flush_timeout, self._left()))


def _not_serving(message: str, *args: object, extra: dict[str, object] | None = None) -> StartFailed:
    logger.error("not serving: " + message, *args, extra=extra)
    return StartFailed(message % args)


def _deadline_exceeded(timeout: float) -> None:
    logger.error(
        "shutdown did not finish within %gs (--shutdown-timeout): exiting now",
        timeout,
        extra={"event": "shutdown_deadline_exceeded"},
    )
    logging.shutdown()
    os._exit(1)


def _described(source: Source) -> str:
    return f"flag file {source.origin}" if isinstance(source, FileSource) else source.origin


def _tls_files(settings: Settings) -> TlsFiles | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    return TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
