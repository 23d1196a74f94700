"""Sources by URI scheme, and what a source hands over: a document, not a flag set."""

import hashlib
from pathlib import Path
from urllib.parse import SplitResult

import pytest

from sidecar.sources import (
    JSON,
    REGISTRY,
    YAML,
    Document,
    FileSource,
    SourceRegistry,
    SourceURIError,
    open_source,
)

FLAG_TEXT = "flags:\n  - key: a\n    enabled: true\n    variants: [{key: 'on', value: true}]\n"


def test_a_file_uri_opens_a_file_source(tmp_path):
    path = tmp_path / "my flags.yaml"
    source = open_source(f"file://{str(path).replace(' ', '%20')}")
    assert isinstance(source, FileSource)
    assert source.path == path
    assert open_source(f"file://localhost{path}").path == path
    assert open_source("file:relative/flags.yaml").path == Path("relative/flags.yaml")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "http://flags.internal/flags.yaml",
            "unknown source scheme 'http' in 'http://flags.internal/flags.yaml'",
        ),
        ("postgresql://db/flags", "unknown source scheme 'postgresql'"),
        ("/etc/flags.yaml", "no scheme in '/etc/flags.yaml'"),
    ],
)
def test_an_unknown_scheme_lists_the_known_ones(uri, message):
    with pytest.raises(SourceURIError) as raised:
        open_source(uri)
    assert message in str(raised.value)
    listed = str(raised.value).partition("; the sources are ")[2]
    assert "file (file:///path/flags.yaml)" in listed
    assert "grpc (grpc://control-plane:8015?selector=flag-set=default)" in listed
    assert "grpcs (grpcs://control-plane:8015?ca=/etc/ca.pem)" in listed


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file://otherhost/etc/flags.yaml", "the host must be empty"),
        ("file:///etc/flags.yaml?poll=1", "takes no query or fragment"),
        ("file:///etc/flags/", "expected a file path"),
    ],
)
def test_a_file_uri_it_cannot_serve_is_refused(uri, message):
    with pytest.raises(SourceURIError, match=message):
        open_source(uri)


def test_a_new_scheme_is_one_registration(tmp_path):
    class Fixed:
        origin = "fixed:"

        def fetch(self) -> Document:
            return Document(b"{}", JSON, "1", self.origin)

        def watch(self, listener) -> None: ...

        def close(self) -> None: ...

    registry = SourceRegistry()
    seen: list[SplitResult] = []
    registry.register("fixed", lambda uri: seen.append(uri) or Fixed(), "fixed://name")
    assert isinstance(registry.open("fixed://name"), Fixed)
    assert seen[0].netloc == "name"
    assert registry.schemes == ("fixed",)
    with pytest.raises(ValueError, match="registered already"):
        registry.register("FIXED", lambda uri: Fixed(), "fixed://other")
    assert REGISTRY.schemes == ("file", "grpc", "grpcs")


def test_a_file_source_hands_over_the_bytes_with_their_format_and_revision(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text(FLAG_TEXT)
    document = FileSource(path).fetch()
    assert document == Document(
        FLAG_TEXT.encode(), YAML, hashlib.sha1(FLAG_TEXT.encode()).hexdigest(), str(path)
    )
    assert document.versions is None  # a file keeps no versions: the store does
    json_path = tmp_path / "flags.JSON"
    json_path.write_text("{}")
    assert FileSource(json_path).fetch().format == JSON


def test_a_file_source_reports_a_deleted_file_and_its_return_to_its_listener(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text(FLAG_TEXT)
    source = FileSource(path)
    source.fetch()
    heard: list[tuple[str, str, str]] = []

    class Listener:
        def changed(self) -> None:
            heard.append(("changed", "", ""))

        def lost(self, event: str, message: str) -> None:
            heard.append(("lost", event, message))

        def regained(self, event: str, message: str) -> None:
            heard.append(("regained", event, message))

    source._listener = Listener()  # as watch() sets it, without the watcher thread
    path.unlink()
    assert not source.changed()
    assert not source.changed()  # reported once
    path.write_text(FLAG_TEXT)
    source.changed()
    assert heard == [
        ("lost", "flag_file_missing", f"flag file {path} deleted"),
        ("regained", "flag_file_back", f"flag file {path} is back; it is reloaded if its content changed"),
    ]
