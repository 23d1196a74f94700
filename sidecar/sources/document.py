"""What a source hands over: a flag document's bytes, their format, a revision and an origin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

YAML: Final = "yaml"
JSON: Final = "json"
FORMATS: Final = (YAML, JSON)


def format_of_name(name: str) -> str:
    """JSON for a name ending in .json, YAML for any other (YAML reads JSON too, but with YAML's
    rules: the JSON reader is the strict one)."""
    return JSON if name.lower().endswith(".json") else YAML


@dataclass(frozen=True, slots=True)
class Document:
    """A flag document as a source has it. The store parses, validates and compiles it."""

    data: bytes
    format: str  # YAML or JSON
    # What names these bytes at the source (a file's SHA-1, an HTTP ETag, a database revision):
    # logged with each applied set, and what a later source can ask "changed since?" with.
    revision: str
    origin: str  # where it came from, as problems and logs name it (a path, a URI)
    # flag key -> version, from a source that keeps versions of its own (a database); None for one
    # that does not (a file), whose versions the store keeps.
    versions: Mapping[str, int] | None = None


class Source(Protocol):
    """Where flag documents come from. Sources do no parsing and no compiling (import contract)."""

    @property
    def origin(self) -> str: ...

    def fetch(self) -> Document:
        """The document as it is now. Raises OSError when it cannot be had."""
        ...

    def watch(self, listener: SourceListener) -> None:
        """Tell `listener` (from a thread of the source's own) when the document may have changed."""
        ...

    def close(self) -> None: ...


class SourceListener(Protocol):
    """What a source tells its store (FlagStore implements it)."""

    def changed(self) -> None:
        """The document may have changed: the store fetches it."""
        ...

    def lost(self, event: str, message: str) -> None:
        """The document cannot be had for now (a deleted file): the store keeps serving the last
        good set and logs `message`, naming that set, under `event`."""
        ...

    def regained(self, event: str, message: str) -> None:
        """It can be had again (logged as it is); a `changed` follows if its content differs."""
        ...

    def confirmed(self, revision: str) -> None:
        """The source checked, and its document is still `revision` (an HTTP 304): the store's set
        is current if it is that revision, and its age (flag_sidecar_flag_set_age_seconds) starts
        over. Called on every such check, so it must cost nothing. A push source (a stream, a
        database notification channel) calls it whenever its connection vouches that nothing is
        missing (a heartbeat, a resume with nothing new)."""
        ...
