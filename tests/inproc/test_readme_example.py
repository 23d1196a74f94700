"""The README's "In-process" example runs as written, against a real control plane serving
examples/flags.yaml (its two addresses replaced by the control plane's), and its events arrive."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import eventually
from tests.inproc.control_plane import ControlPlane

REPO = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    section = (REPO / "README.md").read_text().split("\n## In-process\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


def test_the_readme_example_runs(tmp_path: Path):
    code = readme_example()
    assert '"127.0.0.1:8015"' in code
    assert '"127.0.0.1:50051"' in code
    plane = ControlPlane(REPO / "examples" / "flags.yaml", tmp_path / "events")
    try:
        code = code.replace('"127.0.0.1:8015"', repr(plane.sync_target))
        code = code.replace('"127.0.0.1:50051"', repr(plane.events_target))
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == [
            "True on TARGETING_MATCH",
            "events dropped while the sidecar was away: 0",
        ]
        events = eventually(lambda: len(plane.exported()) >= 2 and plane.exported(), timeout=15)
        assert sorted(e["userKey"] for e in events) == ["ada", "bob"]
    finally:
        plane.stop()
