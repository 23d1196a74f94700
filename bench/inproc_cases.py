"""In-process evaluation through the client package (clients/python), fed by a real control plane.

A control-plane process (`serve --flags F --sync-listen ...`, F = bench/engine_cases.py's flags)
streams the set to a FlagSidecarClient in this process; then, on the three-condition targeting
flag ("the rules flag"), timeit measures from raw input (user id + attribute dict) to answer:

- `client.evaluate(...)`, without events and with events to the control plane's EventService;
- the OpenFeature provider's own resolve (`resolve_boolean_details`) and a full
  `get_boolean_value` through openfeature-sdk's client (hooks, context merging: the SDK's cost);
- openfeature-flagd-core (flagd's Python evaluator) on the same flag, in the same run.

`python -m bench.inproc_cases` prints the medians.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .engine_cases import ATTRIBUTES, FLAGD, OURS

REPO = Path(__file__).resolve().parent.parent
FLAG = "targeting"
USER = "user-42"


@dataclass
class InprocResult:
    """µs per evaluation, one list of repeats per way in."""

    us: dict[str, list[float]] = field(default_factory=dict)

    def median(self, what: str) -> float:
        return statistics.median(self.us[what])

    @property
    def ratio(self) -> float:
        """flagd-core / the client package (no events), medians of the same run."""
        return self.median("flagd-core") / self.median("client")


def _per_call_us(func: Callable[[], object], repeats: int, number: int) -> list[float]:
    return [t / number * 1e6 for t in timeit.repeat(func, repeat=repeats, number=number)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def control_plane(directory: Path) -> Iterator[tuple[str, str]]:
    """A `serve` process with the bench flags; yields (sync target, main listener)."""
    flags = directory / "flags.json"
    flags.write_text(json.dumps(OURS))
    sync, listen = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", "sidecar.cli", "serve", "--flags", str(flags), "--listen", listen]
    command += ["--sync-listen", sync, "--exporter", f"file:dir={directory / 'events'},format=jsonl"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"FLAG_SIDECAR_MANAGEMENT_LISTEN": "127.0.0.1:0", "PATH": "/usr/bin:/bin"},
    )
    try:
        yield sync, listen
    finally:
        process.terminate()
        process.wait(20)


def run(repeats: int = 7, number: int = 20_000) -> InprocResult:
    from openfeature import api
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext

    from flagsidecar_client import FlagSidecarClient
    from flagsidecar_client.provider import FlagSidecarProvider

    result = InprocResult()
    core = FlagdCore()
    core.set_flags(FLAGD)
    with tempfile.TemporaryDirectory() as tmp, control_plane(Path(tmp)) as (sync, listen):
        plain = FlagSidecarClient(sync).start(wait=30)
        # Events on, flushed often enough that the buffer never fills during a repeat.
        reporting = FlagSidecarClient(
            sync, events_target=listen, max_buffered_events=10 * number, event_flush_interval=0.2
        ).start(wait=30)
        provider = FlagSidecarProvider(plain)
        api.set_provider_and_wait(provider, domain="bench")
        openfeature = api.get_client("bench")
        try:
            assert plain.evaluate(FLAG, USER, ATTRIBUTES).value is True
            assert core.resolve_boolean_value(FLAG, False, EvaluationContext(USER, ATTRIBUTES)).value is True
            evaluate, evaluate_reporting = plain.evaluate, reporting.evaluate
            resolve = provider.resolve_boolean_details
            get_value = openfeature.get_boolean_value
            flagd = core.resolve_boolean_value
            ways: dict[str, tuple[Callable[[], object], int]] = {
                "client": (lambda: evaluate(FLAG, USER, ATTRIBUTES), number),
                "client, events on": (lambda: evaluate_reporting(FLAG, USER, ATTRIBUTES), number),
                "provider resolve": (
                    lambda: resolve(FLAG, False, EvaluationContext(USER, ATTRIBUTES)),
                    number,
                ),
                "openfeature-sdk get_boolean_value": (
                    lambda: get_value(FLAG, False, EvaluationContext(USER, ATTRIBUTES)),
                    number // 10,
                ),
                "flagd-core": (lambda: flagd(FLAG, False, EvaluationContext(USER, ATTRIBUTES)), number // 10),
            }
            for what, (func, calls) in ways.items():
                result.us[what] = _per_call_us(func, repeats, calls)
                if what == "client, events on":
                    reporting.flush_events(30)
            assert reporting.dropped_events == 0, reporting.dropped_events
        finally:
            api.clear_providers()
            reporting.close()
    return result


if __name__ == "__main__":
    measured = run()
    for what in measured.us:
        print(f"{what:36} {measured.median(what):7.2f} us (min {min(measured.us[what]):.2f})")
    print(f"flagd-core / client: {measured.ratio:.1f}x")
