"""The runtime (sidecar/app/runtime.py) starts the components in their declared order and stops
them in reverse when one fails to start, leaving nothing running: no thread, no listening port,
no lock in --state-dir or the spool. A clean shutdown follows its declared order too."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar import cli
from sidecar.app import settings as app_settings
from sidecar.app.runtime import SHUTDOWN, STARTUP, Runtime, StartFailed
from sidecar.store import VersionTable
from tests.conftest import SAMPLE_FLAGS, eventually, write_flag_file
from tests.ports import free_port
from tests.serve_process import run_cli


def settings_for(*argv: str) -> app_settings.Settings:
    return app_settings.load_settings(cli.build_parser().parse_args(["serve", *argv]), {})


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        yield int(holder.getsockname()[1])


@pytest.fixture
def base_args(tmp_path: Path) -> list[str]:
    """Every component on, with fixed ports, a state directory and an exporter with a spool."""
    flags = write_flag_file(tmp_path / "flags.yaml", SAMPLE_FLAGS)
    return [
        "--flags", str(flags),
        "--listen", f"127.0.0.1:{free_port()}",
        "--management-listen", f"127.0.0.1:{free_port()}",
        "--health-listen", f"127.0.0.1:{free_port()}",
        "--sync-listen", f"127.0.0.1:{free_port()}",
        "--flagd-connect-listen", f"127.0.0.1:{free_port()}",
        "--state-dir", str(tmp_path / "state"),
        "--exporter", f"file:dir={tmp_path / 'events'}",
        "--spool-dir", str(tmp_path / "spool"),
        "--shutdown-grace", "0",
    ]  # fmt: skip


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread not in before and thread.is_alive()]


def assert_nothing_left_running(before: set[threading.Thread]) -> None:
    eventually(lambda: not new_threads(before), timeout=15)


# (the fault: options that replace the base ones, the components that started before it)
FAULTS = {
    "management port in use": (lambda busy, tmp: ["--management-listen", f"127.0.0.1:{busy}"], []),
    "broken flag file": (
        lambda busy, tmp: ["--flags", str(write_flag_file(tmp / "broken.yaml", {"flags": [{"key": 1}]}))],
        ["management", "events"],
    ),
    "health port in use": (
        lambda busy, tmp: ["--health-listen", f"127.0.0.1:{busy}"],
        ["management", "events", "store"],
    ),
    "TLS files missing": (
        lambda busy, tmp: ["--tls-cert", str(tmp / "absent.pem"), "--tls-key", str(tmp / "absent.key")],
        ["management", "events", "store", "health"],
    ),
    "flagd Connect port in use": (
        lambda busy, tmp: ["--flagd-connect-listen", f"127.0.0.1:{busy}"],
        ["management", "events", "store", "health", "server"],
    ),
    "sync port in use": (
        lambda busy, tmp: ["--sync-listen", f"127.0.0.1:{busy}"],
        ["management", "events", "store", "health", "server", "connect"],
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_component_that_fails_to_start_leaves_nothing_running(fault, base_args, busy_port, tmp_path):
    faulty_args, started_before_it = FAULTS[fault]
    before = set(threading.enumerate())

    runtime = Runtime(settings_for(*base_args, *faulty_args(busy_port, tmp_path)))
    with pytest.raises(StartFailed), runtime:
        runtime.start()

    assert runtime.started == started_before_it
    assert runtime.stopped == started_before_it[::-1]
    assert_nothing_left_running(before)
    # The same settings without the fault start: every port, --state-dir and the spool are free.
    # (The runtime that failed is still referenced: nothing was left to the garbage collector.)
    with Runtime(settings_for(*base_args)) as again:
        again.start()
        assert again.started == [name for name in STARTUP if name != "admin"]  # no --admin-listen
        assert again.shutdown("test") == 0
    assert again.stopped == [name for name in SHUTDOWN if name != "admin"]
    assert_nothing_left_running(before)


def test_a_rejected_flag_file_releases_the_state_dir(tmp_path, base_args):
    broken = write_flag_file(tmp_path / "broken.yaml", {"flags": [{"key": "x", "variants": "no"}]})
    runtime = Runtime(settings_for(*base_args, "--flags", str(broken)))
    with pytest.raises(StartFailed, match=r"broken\.yaml has"), runtime:
        runtime.start()

    versions = VersionTable(tmp_path / "state")
    versions.open()  # StateDirLockedError if the failed store still held it
    versions.close()


def test_start_and_shutdown_follow_the_declared_orders(base_args):
    before = set(threading.enumerate())
    with Runtime(settings_for(*base_args)) as runtime:
        runtime.start()
        assert runtime.started == ["management", "events", "store", "health", "server", "connect", "sync"]
        assert runtime.shutdown("SIGTERM") == 0
    # Readiness goes off first (the server's first step), the flagd Connect listener stops after
    # the drain, the events of the last calls are flushed after it, and the health listener stops
    # after the store, with management.
    assert runtime.stopped == ["sync", "server", "connect", "events", "store", "health", "management"]
    assert_nothing_left_running(before)


def test_components_that_are_off_are_neither_started_nor_stopped(sample_flag_file):
    args = ["--flags", str(sample_flag_file), "--listen", "127.0.0.1:0", "--management-listen", "off"]
    with Runtime(settings_for(*args)) as runtime:
        runtime.start()
        assert runtime.shutdown("SIGTERM") == 0
    assert runtime.started == ["events", "store", "server"]
    assert runtime.stopped == ["server", "events", "store"]


def test_missing_tls_files_exit_1_with_one_line_naming_them(sample_flag_file, tmp_path):
    result = run_cli(
        "serve",
        "--flags", str(sample_flag_file),
        "--listen", "127.0.0.1:0",
        "--tls-cert", str(tmp_path / "absent.pem"),
        "--tls-key", str(tmp_path / "absent.key"),
    )  # fmt: skip

    assert result.returncode == 1, result.stderr
    last = json.loads(result.stderr.splitlines()[-1])
    assert last["level"] == "error"
    assert last["message"].startswith("not serving: ")
    assert "absent.pem" in last["message"]
