"""FlagSidecarClient: flags evaluated in the application's own process, fed by a control plane.

The client follows a flag-sidecar's sync stream (SyncService.Watch on its --sync-listen address),
compiles each change once with the sidecar's own engine, and swaps the compiled set in whole (one
attribute assignment: an evaluation reads one snapshot). `evaluate` is a dictionary lookup, the
context's validation (the engine's check, as the sidecar's RPC admits a user; the context is copied
only for a flag that reads the user id) and the compiled flag's own function, which returns the
client's Evaluation itself (snapshot.py): no I/O, no lock, no allocation. The FeatureEvents of
tracked flags are queued for the sidecar's EventService (reporter.py) and never delay the answer.

While the control plane is unreachable the client keeps serving the last set it compiled and
reconnects with backoff and jitter; a restarted control plane is caught up from the revision held.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc

from sidecar.engine import ErrorCode, InvalidContextError, build_context, check_context, flag_not_found
from sidecar.syncset import CLIENT_CHANNEL_OPTIONS

from .evaluation import Evaluation, User, error
from .follower import Follower
from .reporter import EventReporter
from .snapshot import EMPTY, Snapshot

log = logging.getLogger(__name__)

__all__ = ["FlagSidecarClient"]

_ANONYMOUS = "anonymous"


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(target, options=CLIENT_CHANNEL_OPTIONS)
    return grpc.secure_channel(target, credentials, options=CLIENT_CHANNEL_OPTIONS)


class FlagSidecarClient:
    """In-process evaluation (docs/clients/python.md).

    `target`: the control plane's sync listener (HOST:PORT, `serve --sync-listen`).
    `events_target`: a sidecar's main listener (`--listen`) whose EventService receives the
    evaluation events; None sends none. `selector`: "flag-set=NAME" or empty.
    """

    def __init__(
        self,
        target: str,
        *,
        events_target: str | None = None,
        selector: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        backoff_max: float = 10.0,
        event_batch_size: int = 500,
        event_flush_interval: float = 1.0,
        max_buffered_events: int = 10_000,
        ready_timeout: float = 10.0,
    ) -> None:
        self.target = target
        self._ready_timeout = ready_timeout
        self._snapshot: Snapshot = EMPTY
        self._ready = threading.Event()
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._channel = _channel(target, credentials)
        origin = f"grpc://{target}" + (f"?selector={selector}" if selector else "")
        self._follower = Follower(self._channel, selector, origin, self._swap, backoff_max=backoff_max)
        self._events_channel: grpc.Channel | None = None
        self._reporter: EventReporter | None = None
        if events_target is not None:
            self._events_channel = (
                self._channel if events_target == target else _channel(events_target, credentials)
            )
            self._reporter = EventReporter(
                self._events_channel,
                batch_size=event_batch_size,
                flush_interval=event_flush_interval,
                max_buffered=max_buffered_events,
                backoff_max=backoff_max,
            )
        self._started = False

    # ------------------------------------------------------------ lifecycle

    def start(self, wait: float | None = -1) -> FlagSidecarClient:
        """Start following the stream (and sending events); with `wait` (default: the client's
        ready_timeout), block until the first set is compiled or `wait` seconds pass (TimeoutError:
        the client keeps trying meanwhile); None does not wait."""
        if wait is not None and wait < 0:
            wait = self._ready_timeout
        if not self._started:
            self._started = True
            self._follower.start()
            if self._reporter is not None:
                self._reporter.start()
        if wait is not None and not self._ready.wait(wait):
            why = self._follower.last_error or "no answer"
            raise TimeoutError(f"no flag set from {self.target} within {wait:g}s ({why}); still trying")
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def close(self, flush_timeout: float = 5.0) -> None:
        """Stop following; send what events are buffered (up to `flush_timeout`)."""
        self._follower.close()
        if self._reporter is not None:
            self._reporter.close(flush_timeout)
        if self._events_channel is not None and self._events_channel is not self._channel:
            self._events_channel.close()
        self._channel.close()

    def __enter__(self) -> FlagSidecarClient:
        try:
            return self.start()
        except TimeoutError:
            self.close(flush_timeout=0)  # no `with` body runs, so no __exit__ would close it
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def on_change(self, listener: Callable[[Snapshot], None]) -> None:
        """Call `listener(snapshot)` after each compiled set is swapped in (on the stream's thread)."""
        self._listeners.append(listener)

    def _swap(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot  # one assignment: readers see the old set or the new one
        self._ready.set()
        for listener in self._listeners:
            try:
                listener(snapshot)
            except Exception:
                log.exception("flag-sidecar client: a change listener failed")

    # ------------------------------------------------------------ state

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def connected(self) -> bool:
        """True while the sync stream is up (False: serving the last set, reconnecting)."""
        return self._follower.connected

    @property
    def revision(self) -> int:
        """The revision of the set being served (0 before the first)."""
        return self._snapshot.revision

    @property
    def flag_set_name(self) -> str:
        return self._snapshot.flag_set_name

    def flag_keys(self) -> list[str]:
        return list(self._snapshot.flags)

    @property
    def dropped_events(self) -> int:
        """Evaluation events never sent: the buffer was full while the sidecar was unreachable."""
        return 0 if self._reporter is None else self._reporter.dropped

    @property
    def sent_events(self) -> int:
        return 0 if self._reporter is None else self._reporter.sent

    @property
    def buffered_events(self) -> int:
        return 0 if self._reporter is None else self._reporter.buffered

    def flush_events(self, timeout: float = 5.0) -> bool:
        """Send the buffered events now; True once all were accepted (or no events are sent)."""
        return True if self._reporter is None else self._reporter.flush(timeout)

    # ------------------------------------------------------------ evaluation

    def evaluate(
        self, flag_key: str, user_id: str = "", context: Mapping[str, Any] | None = None
    ) -> Evaluation:
        """The variant `flag_key` serves the user, as the sidecar's Evaluate would answer it. Never
        raises: errors (FLAG_NOT_FOUND, INVALID_CONTEXT, no set yet) are in the Evaluation. The
        context is checked first, as Evaluate admits a user before it looks the flag up."""
        # The hot path, written out in one function (a call and a tuple cost as much as a test).
        try:  # a subscript: CPython specializes it, where a .get() is a method call
            compute, answer, track, reads_user_id, _ = self._snapshot.steps[flag_key]
        except KeyError:
            return self._unknown(flag_key, user_id, context)
        try:
            if reads_user_id or type(context) is not dict:
                built: Mapping[str, Any] = build_context(user_id, context)
            else:  # evaluated over the caller's own dict: checked, never kept or changed
                check_context(context)
                built = context
        except InvalidContextError as problem:
            return Evaluation.of(error(flag_key, ErrorCode.INVALID_CONTEXT, f"invalid context: {problem}"))
        if compute is not None:
            answer = compute(built)
        if track and self._reporter is not None:
            self._reporter.add(answer, user_id, built.get(_ANONYMOUS) is True)
        return answer

    def _unknown(self, flag_key: str, user_id: str, context: Mapping[str, Any] | None) -> Evaluation:
        """evaluate() for a key the set does not have (an error answer, its event queued)."""
        try:
            built = build_context(user_id, context)
        except InvalidContextError as problem:
            return Evaluation.of(error(flag_key, ErrorCode.INVALID_CONTEXT, f"invalid context: {problem}"))
        return self._answer(flag_key, built, user_id)

    def user(self, user_id: str, context: Mapping[str, Any] | None = None) -> User:
        """A user checked once, for many evaluations (`evaluate_user`): a loop over flags for one
        user then pays the context's check and copy once. Raises InvalidContextError."""
        return User(user_id, build_context(user_id, context))

    def evaluate_user(self, flag_key: str, user: User) -> Evaluation:
        """`evaluate(flag_key, user.id, its context)` for a user made by `user()`."""
        return self._answer(flag_key, user._context, user.id)

    def _answer(self, flag_key: str, built: Mapping[str, Any], user_id: str) -> Evaluation:
        snapshot = self._snapshot
        step = snapshot.steps.get(flag_key)
        if step is None:
            if not flag_key:
                return Evaluation.of(error(flag_key, ErrorCode.GENERAL, "flag_key is required"))
            if snapshot is EMPTY:
                return Evaluation.of(
                    error(flag_key, ErrorCode.GENERAL, f"no flag set received yet from {self.target}")
                )
            answer, track = Evaluation.of(flag_not_found(flag_key)), True
        else:
            compute, answer, track, _, _ = step
            if compute is not None:
                answer = compute(built)
        if track and self._reporter is not None:
            self._reporter.add(answer, user_id, built.get(_ANONYMOUS) is True)
        return answer

    def evaluate_all(
        self, user_id: str = "", context: Mapping[str, Any] | None = None, flag_keys: Sequence[str] = ()
    ) -> list[Evaluation]:
        """Every flag (or the listed ones) for one user, sorted by key, as the sidecar's EvaluateAll
        answers: an unknown listed key is a FLAG_NOT_FOUND entry; an invalid context makes every
        entry INVALID_CONTEXT (where EvaluateAll fails the call)."""
        snapshot = self._snapshot
        keys = sorted(set(flag_keys) if flag_keys else snapshot.flags)
        try:
            build_context(user_id, context)
        except InvalidContextError as problem:
            return [
                Evaluation.of(error(key, ErrorCode.INVALID_CONTEXT, f"invalid context: {problem}"))
                for key in keys
            ]
        return [self.evaluate(key, user_id, context) for key in keys]

    def boolean(
        self, flag_key: str, default: bool, user_id: str = "", context: Mapping[str, Any] | None = None
    ) -> bool:
        value = self._value(flag_key, user_id, context)
        return value if type(value) is bool else default

    def string(
        self, flag_key: str, default: str, user_id: str = "", context: Mapping[str, Any] | None = None
    ) -> str:
        value = self._value(flag_key, user_id, context)
        return value if type(value) is str else default

    def number(
        self, flag_key: str, default: float, user_id: str = "", context: Mapping[str, Any] | None = None
    ) -> float:
        value = self._value(flag_key, user_id, context)
        return value if type(value) in (int, float) else default

    def object(
        self, flag_key: str, default: Any, user_id: str = "", context: Mapping[str, Any] | None = None
    ) -> Any:
        value = self._value(flag_key, user_id, context)
        return value if isinstance(value, dict | list) else default

    def _value(self, flag_key: str, user_id: str, context: Mapping[str, Any] | None) -> Any:
        evaluation = self.evaluate(flag_key, user_id, context)
        return evaluation.value if evaluation.has_value else None
