"""Sources by URI scheme: `file:///path/flags.yaml`, `grpc://HOST:PORT` and `grpcs://` (another
flag-sidecar's sync stream); http(s), sqlite and postgresql are each one more `register` call when
they come."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit
from urllib.request import url2pathname

from .document import Source
from .file import FileSource

# Builds a source from its URI (already split). It only checks and keeps what the URI says:
# connecting and reading are for fetch() and watch(), so that an option check can build one.
Opener = Callable[[SplitResult], Source]


class SourceURIError(ValueError):
    """A source URI that names no known scheme, or that its scheme's opener refuses."""


@dataclass(frozen=True, slots=True)
class _Scheme:
    opener: Opener
    example: str  # shown in errors, e.g. file:///etc/flag-sidecar/flags.yaml


class SourceRegistry:
    def __init__(self) -> None:
        self._schemes: dict[str, _Scheme] = {}

    def register(self, scheme: str, opener: Opener, example: str) -> None:
        scheme = scheme.lower()
        if scheme in self._schemes:
            raise ValueError(f"source scheme {scheme!r} is registered already")
        self._schemes[scheme] = _Scheme(opener, example)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted(self._schemes))

    def open(self, uri: str) -> Source:
        """The source `uri` names. Raises SourceURIError listing the known schemes."""
        text = uri.strip()
        split = urlsplit(text)
        # One letter before ":" is a Windows drive, not a scheme; no "//" or ":" means a bare path.
        scheme = self._schemes.get(split.scheme.lower()) if len(split.scheme) > 1 else None
        if scheme is None:
            what = f"unknown source scheme {split.scheme!r}" if len(split.scheme) > 1 else "no scheme"
            raise SourceURIError(f"{what} in {text!r}; the sources are {self.described()}")
        return scheme.opener(split)

    def described(self) -> str:
        return ", ".join(f"{name} ({self._schemes[name].example})" for name in self.schemes)


def open_file(uri: SplitResult) -> FileSource:
    """file:///absolute/path, file://localhost/absolute/path, or file:relative/path (relative to
    the working directory, as a --flags PATH is)."""
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


def open_upstream(uri: SplitResult) -> Source:
    """grpc://HOST:PORT?selector=flag-set=NAME, grpcs://... (upstream.py lists the options).
    Imported here, not at the top: reading the command line imports no gRPC unless a grpc://
    source is given."""
    from .upstream import UpstreamSource, UpstreamURIError, parse_upstream_uri

    try:
        return UpstreamSource(parse_upstream_uri(uri))
    except UpstreamURIError as error:
        raise SourceURIError(str(error)) from None


REGISTRY = SourceRegistry()
REGISTRY.register("file", open_file, "file:///path/flags.yaml")
REGISTRY.register("grpc", open_upstream, "grpc://control-plane:8015?selector=flag-set=default")
REGISTRY.register("grpcs", open_upstream, "grpcs://control-plane:8015?ca=/etc/ca.pem")


def open_source(uri: str) -> Source:
    """The source a URI names, by its scheme (REGISTRY). Raises SourceURIError."""
    return REGISTRY.open(uri)
