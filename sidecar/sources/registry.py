"""Sources by URI scheme: `file:///path/flags.yaml`, `https://host/flags.yaml` (or http://),
`sqlite:///path/flags.db`, `postgresql://user@host/database`, and `grpc://HOST:PORT` and
`grpcs://` (another flag-sidecar's sync stream).

A source serves one flag set (`--selector flag-set=NAME`, `default` unless named). A database
scheme also opens the database itself (`open_database`), for the admin API and the `migrate` and
`flags` commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit
from urllib.request import url2pathname

from .document import Source
from .file import FileSource
from .remote_options import DEFAULT_FLAG_SET, RemoteSourceOptions, selected_flag_set

if TYPE_CHECKING:  # the database package is imported by the database schemes' openers, when used
    from .database import DatabaseSource, FlagDatabase

# Builds a source from its URI (already split) and the source options (--source-poll-interval,
# ...). It only checks and keeps what they say: connecting and reading are for fetch() and
# watch(), so that an option check can build one.
Opener = Callable[[SplitResult, RemoteSourceOptions], Source]
# Opens the database a database URI names (without connecting yet).
DatabaseOpener = Callable[[SplitResult], "FlagDatabase"]


class SourceURIError(ValueError):
    """A source URI that names no known scheme, or that its scheme's opener refuses."""


@dataclass(frozen=True, slots=True)
class _Scheme:
    opener: Opener
    example: str  # shown in errors, e.g. file:///etc/flag-sidecar/flags.yaml
    database: DatabaseOpener | None = None


class SourceRegistry:
    def __init__(self) -> None:
        self._schemes: dict[str, _Scheme] = {}

    def register(
        self, scheme: str, opener: Opener, example: str, database: DatabaseOpener | None = None
    ) -> None:
        scheme = scheme.lower()
        if scheme in self._schemes:
            raise ValueError(f"source scheme {scheme!r} is registered already")
        self._schemes[scheme] = _Scheme(opener, example, database)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted(self._schemes))

    def open(self, uri: str, options: RemoteSourceOptions | None = None) -> Source:
        """The source `uri` names, built with `options` (the defaults when None). Raises
        SourceURIError listing the known schemes."""
        split, scheme = self._scheme(uri)
        return scheme.opener(split, RemoteSourceOptions() if options is None else options)

    def open_database(self, uri: str) -> FlagDatabase:
        """The database a database URI names. Raises SourceURIError (also for a file URI)."""
        split, scheme = self._scheme(uri)
        if scheme.database is None:
            databases = ", ".join(
                f"{name} ({entry.example})" for name, entry in sorted(self._schemes.items()) if entry.database
            )
            raise SourceURIError(f"{uri.strip()!r} names no database; the databases are {databases}")
        return scheme.database(split)

    def _scheme(self, uri: str) -> tuple[SplitResult, _Scheme]:
        text = uri.strip()
        split = urlsplit(text)
        # One letter before ":" is a Windows drive, not a scheme; no "//" or ":" means a bare path.
        scheme = self._schemes.get(split.scheme.lower()) if len(split.scheme) > 1 else None
        if scheme is None:
            what = f"unknown source scheme {split.scheme!r}" if len(split.scheme) > 1 else "no scheme"
            raise SourceURIError(f"{what} in {text!r}; the sources are {self.described()}")
        return split, scheme

    def described(self) -> str:
        return ", ".join(f"{name} ({self._schemes[name].example})" for name in self.schemes)


def open_file(uri: SplitResult, options: RemoteSourceOptions) -> FileSource:
    """file:///absolute/path, file://localhost/absolute/path, or file:relative/path (relative to
    the working directory, as a --flags PATH is). A file holds one flag set: `default`."""
    flag_set = selected_flag_set(options.selector)
    if flag_set != DEFAULT_FLAG_SET:
        raise SourceURIError(
            f"{uri.geturl()!r}: a flag file is one flag set; --selector flag-set={flag_set} is for "
            "database sources (serve another file instead)"
        )
    if uri.netloc not in ("", "localhost"):
        raise SourceURIError(
            f"{uri.geturl()!r}: a file source reads a local file; the host must be empty "
            "(file:///path) or localhost"
        )
    if uri.query or uri.fragment or uri.geturl().endswith(("?", "#")):
        raise SourceURIError(f"{uri.geturl()!r}: a file source takes no query or fragment")
    path = url2pathname(uri.path)
    if not path or path.endswith("/"):
        raise SourceURIError(f"{uri.geturl()!r}: expected a file path, for example file:///etc/flags.yaml")
    return FileSource(path)


def open_http(uri: SplitResult, options: RemoteSourceOptions) -> Source:
    """http://host[:port]/path or https://...; user:password@ in the URI is sent as Basic auth."""
    from .http import ClientTls, HttpSource  # urllib3 only for a sidecar that uses it

    if not uri.hostname:
        raise SourceURIError(
            f"{uri.scheme}:...: expected {uri.scheme}://HOST/PATH, for example "
            f"{uri.scheme}://flags.internal/flags.yaml"
        )
    try:
        uri.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise SourceURIError(f"{uri.scheme}://{uri.hostname}: {error}") from None
    tls = ClientTls(options.source_tls_ca, options.source_tls_cert, options.source_tls_key)
    return HttpSource(
        uri, poll_interval=options.source_poll_interval, timeout=options.source_timeout, tls=tls
    )


def open_upstream(uri: SplitResult, options: RemoteSourceOptions) -> Source:
    """grpc://HOST:PORT?selector=flag-set=NAME, grpcs://... (upstream.py lists the options).
    Imported here, not at the top: reading the command line imports no gRPC unless a grpc://
    source is given."""
    from .upstream import UpstreamSource, UpstreamURIError, parse_upstream_uri

    try:
        return UpstreamSource(parse_upstream_uri(uri))
    except UpstreamURIError as error:
        raise SourceURIError(str(error)) from None


def open_sqlite_database(uri: SplitResult) -> FlagDatabase:
    """sqlite:///absolute/path/flags.db, or sqlite:relative/path.db (as file: URIs read)."""
    if uri.netloc not in ("", "localhost"):
        raise SourceURIError(f"{uri.geturl()!r}: an SQLite database is a local file; the host must be empty")
    if uri.query or uri.fragment:
        raise SourceURIError(f"{uri.geturl()!r}: an sqlite URI takes no query or fragment")
    path = url2pathname(uri.path)
    if not path or path.endswith("/"):
        raise SourceURIError(
            f"{uri.geturl()!r}: expected a file path, for example sqlite:///var/lib/flags.db"
        )
    from .database import FlagDatabase, SqliteDialect

    return FlagDatabase(SqliteDialect(path))


def open_sqlite(uri: SplitResult, options: RemoteSourceOptions) -> DatabaseSource:
    from .database import DatabaseSource

    return DatabaseSource(open_sqlite_database(uri), selected_flag_set(options.selector))


def open_postgresql_database(uri: SplitResult) -> FlagDatabase:
    """postgresql://user:password@host:port/database (libpq's URI; its query options too, and
    pool_size=N, pool_timeout=SECONDS: postgresql.py)."""
    if not uri.hostname and "host=" not in uri.query:
        raise SourceURIError(f"{uri.geturl()!r}: expected postgresql://user@host:port/database")
    from .database import FlagDatabase
    from .database.postgresql import PostgresDialect

    try:
        return FlagDatabase(PostgresDialect(uri.geturl()))
    except ValueError as error:
        raise SourceURIError(f"{PostgresDialect.origin_of(uri.geturl())}: {error}") from None


def open_postgresql(uri: SplitResult, options: RemoteSourceOptions) -> DatabaseSource:
    from .database import DatabaseSource

    return DatabaseSource(open_postgresql_database(uri), selected_flag_set(options.selector))


REGISTRY = SourceRegistry()
REGISTRY.register("file", open_file, "file:///path/flags.yaml")
REGISTRY.register("https", open_http, "https://host/flags.yaml")
REGISTRY.register("http", open_http, "http://host/flags.yaml")
REGISTRY.register("grpc", open_upstream, "grpc://control-plane:8015?selector=flag-set=default")
REGISTRY.register("grpcs", open_upstream, "grpcs://control-plane:8015?ca=/etc/ca.pem")
REGISTRY.register("sqlite", open_sqlite, "sqlite:///path/flags.db", database=open_sqlite_database)
REGISTRY.register(
    "postgresql", open_postgresql, "postgresql://user@host/database", database=open_postgresql_database
)


def open_source(uri: str, options: RemoteSourceOptions | None = None) -> Source:
    """The source a URI names, by its scheme (REGISTRY). Raises SourceURIError."""
    return REGISTRY.open(uri, options)


def open_database(uri: str) -> FlagDatabase:
    """The database a database URI names (REGISTRY). Raises SourceURIError."""
    return REGISTRY.open_database(uri)
