"""The `users` event exporter: who was served what (flaggio's users and evaluations), recorded in
the flag database from the FeatureEvents, off the hot path.

    --exporter users:source=sqlite:///var/lib/flags.db[,flag_set=NAME]

A bulk exporter like the others (batched by --flush-interval and --max-events-in-memory, retried
and spooled by its scheduler): each batch is one transaction that upserts each user's last-seen
time and the latest evaluation of each flag (a user's earlier evaluations of a flag are replaced,
not kept). flaggio wrote to Mongo on every evaluation; this writes once per batch, from the
exporter's thread. A user is its id, its context kind, when it was seen and the context of
its latest evaluation: the pipeline gives this exporter, and no other, events that carry the
context (`wants_context`); `context=false` keeps contexts out of the database. Kept until deleted
(DeleteUser, DeleteEvaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ..events.exporter import RetryableExportError
from ..events.feature_event import ContextFeatureEvent, Event, FeatureEvent
from ..events.options import Options
from ..sources.database import DEFAULT_FLAG_SET, FlagDatabase, UserEvaluation, UserRecord
from ..sources.remote_options import parse_flag_set


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UserResultsExporter:
    is_bulk = True

    def __init__(
        self, database: FlagDatabase, flag_set: str = DEFAULT_FLAG_SET, context: bool = True
    ) -> None:
        self.database = database
        self.flag_set = flag_set
        self.wants_context = context  # read by the pipeline (Route.wants_context)
        self._migrated = False

    def export(self, events: Sequence[Event]) -> None:
        users: dict[str, UserRecord] = {}
        latest: dict[tuple[str, str], UserEvaluation] = {}
        for event in events:
            if not isinstance(event, FeatureEvent) or not event.user_key:
                continue
            at = _at(event.creation_date)
            seen = users.get(event.user_key)
            context = event.context if self.wants_context and isinstance(event, ContextFeatureEvent) else None
            users[event.user_key] = UserRecord(
                event.user_key,
                event.context_kind,
                seen.first_seen if seen else at,
                at,
                context if context is not None else (seen.context if seen else None),
            )
            latest[event.user_key, event.key] = UserEvaluation(
                event.user_key,
                event.key,
                event.version,
                event.variation,
                event.value,
                event.reason,
                event.error_code,
                at,
            )
        if not users:
            return
        try:
            if not self._migrated:
                self.database.migrate()
                self._migrated = True
            self.database.record_evaluations(self.flag_set, list(users.values()), list(latest.values()))
        except OSError as error:
            self.database.reset()
            raise RetryableExportError(str(error), reason="database_unavailable") from error

    def close(self) -> None:
        self.database.close()

    @classmethod
    def from_options(
        cls, options: Options, open_database: Callable[[str], FlagDatabase]
    ) -> UserResultsExporter:
        """`--exporter users:source=URI[,flag_set=NAME][,context=false]`; `open_database` opens the
        URI's database (the sources' registry, which the composition root hands over: the store
        does not import it, as it reaches every source, gRPC's among them)."""
        source = options.required("source")
        try:
            database = open_database(source)
            flag_set = parse_flag_set(options.string("flag_set", DEFAULT_FLAG_SET) or DEFAULT_FLAG_SET)
        except ValueError as error:  # SourceURIError among them
            raise options.error(str(error)) from None
        return cls(database, flag_set, options.boolean("context", True))
