"""A real control plane for the in-process client's tests: `flag-sidecar serve --flags FILE
--sync-listen HOST:PORT` with a file exporter, restartable on the same ports."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import SAMPLE_FLAGS, eventually, write_flag_file
from tests.ports import free_ports
from tests.serve_process import ServeProcess


class ControlPlane:
    """`sync_target` for FlagSidecarClient(target=...), `events_target` for its events_target."""

    def __init__(self, flag_file: Path, events_dir: Path, *extra: str) -> None:
        self.flag_file = flag_file
        self.events_dir = events_dir
        # Below the ephemeral range (tests/ports.py): a restart binds them again, and while the
        # plane was down no other test's port-0 listener or outgoing connection can have taken them.
        self.sync_port, self.listen_port = free_ports(2)
        self.extra = extra
        self.process: ServeProcess | None = None
        self.start()

    @property
    def sync_target(self) -> str:
        return f"127.0.0.1:{self.sync_port}"

    @property
    def events_target(self) -> str:
        return f"127.0.0.1:{self.listen_port}"

    def start(self) -> None:
        # ServeProcess listens on 127.0.0.1:0; the fixed --listen after it wins, so that a restarted
        # control plane is where the client left it.
        process = ServeProcess(
            self.flag_file,
            *("--sync-listen", self.sync_target),
            *("--exporter", f"file:dir={self.events_dir},format=jsonl"),
            *("--flush-interval", "0.2"),
            *("--listen", self.events_target),
            *self.extra,
        )
        eventually(
            lambda: "sync listener on" in process.log or process.process.poll() is not None, timeout=15
        )
        assert process.process.poll() is None, process.log
        self.listen_port = int(process.address().rpartition(":")[2])
        bound = re.search(r"sync listener on 127\.0\.0\.1:(\d+)", process.log)
        assert bound, process.log
        self.sync_port = int(bound.group(1))
        self.process = process

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def exported(self) -> list[dict[str, Any]]:
        """Every event the control plane's file exporter has written."""
        paths = sorted(self.events_dir.glob("*.jsonl"))
        return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


class Plane(ControlPlane):
    """A control plane serving tests.conftest.SAMPLE_FLAGS (banner-color with metadata), editable."""

    def __init__(self, tmp_path: Path) -> None:
        self.document: dict[str, Any] = copy.deepcopy(SAMPLE_FLAGS)
        flag = next(f for f in self.document["flags"] if f["key"] == "banner-color")
        flag["metadata"] = {"owner": "growth", "ticket": 42}
        tmp_path.mkdir(parents=True, exist_ok=True)
        super().__init__(write_flag_file(tmp_path / "flags.yaml", self.document), tmp_path / "events")

    def set_banner(self, variant: str) -> None:
        flag = next(f for f in self.document["flags"] if f["key"] == "banner-color")
        flag["defaultVariantWhenOn"] = variant
        write_flag_file(self.flag_file, self.document)


def feature_events(plane: Plane) -> list[dict[str, Any]]:
    return [e for e in plane.exported() if e["kind"] == "feature"]
