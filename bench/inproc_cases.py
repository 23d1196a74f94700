"""In-process evaluation through the client package (clients/python), fed by a real control plane.

A control-plane process (`serve --flags F --sync-listen ...`, F = bench/engine_cases.py's flags)
streams the set to a FlagSidecarClient in this process; then, on the three-condition targeting
flag ("the rules flag"), timeit measures from raw input (user id + attribute dict) to answer:

- `client.evaluate(...)`, without events and with events to the control plane's EventService;
- `client.evaluate_user(...)` for a user prepared once (`client.user(...)`: a loop over flags for
  one user checks and copies the context once);
- the engine alone from raw input (`evaluate(flag, build_context(...))`, bench/engine_cases.py's
  "end to end"), to show what the package adds;
- the OpenFeature provider's own resolve (`resolve_boolean_details`) and a full
  `get_boolean_value` through openfeature-sdk's client (hooks, context merging: the SDK's cost);
- openfeature-flagd-core (flagd's Python evaluator) on the same flag, in the same run.

`python -m bench.inproc_cases` prints the medians; `make bench` calls `run_isolated`, which runs
the measurement in a fresh interpreter (`--json`), so that its figures are a client's and not the
bench process's after the sections before it (measured alike, bench/notes.md).
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
        """flagd-core / the client package (no events): the median of the per-repeat ratios."""
        return statistics.median(f / c for f, c in zip(self.us["flagd-core"], self.us["client"], strict=True))


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
    from sidecar.engine import build_context, compile_flag_set
    from sidecar.engine import evaluate as engine_evaluate

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
            user = plain.user(USER, ATTRIBUTES)
            evaluate_user = plain.evaluate_user
            flag = compile_flag_set(OURS, "bench").flags[FLAG]
            ways: dict[str, tuple[Callable[[], object], int]] = {
                "client": (lambda: evaluate(FLAG, USER, ATTRIBUTES), number),
                "client, events on": (lambda: evaluate_reporting(FLAG, USER, ATTRIBUTES), number),
                "client, prepared user": (lambda: evaluate_user(FLAG, user), number),
                "engine alone": (lambda: engine_evaluate(flag, build_context(USER, ATTRIBUTES)), number),
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
            # Round-robin: each repeat times every way back to back, so that the machine's noise
            # falls on all of them alike and the per-repeat ratio compares like with like.
            for what in ways:
                result.us[what] = []
            for _ in range(repeats):
                for what, (func, calls) in ways.items():
                    result.us[what].append(timeit.timeit(func, number=calls) / calls * 1e6)
                reporting.flush_events(30)
            assert reporting.dropped_events == 0, reporting.dropped_events
        finally:
            api.clear_providers()
            reporting.close()
    return result


def run_isolated(repeats: int = 7, number: int = 20_000) -> InprocResult:
    """`run` in a fresh interpreter, so that what the bench process did before (its heap, its
    threads) weighs on none of the ways in."""
    command = [sys.executable, "-m", "bench.inproc_cases", "--json", str(repeats), str(number)]
    # stderr is left to the caller's terminal, so a failure shows its traceback.
    output = subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout
    return InprocResult(json.loads(output))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--json"]:
        print(json.dumps(run(*map(int, sys.argv[2:])).us))
        sys.exit()
    measured = run()
    for what in measured.us:
        print(f"{what:36} {measured.median(what):7.2f} us (min {min(measured.us[what]):.2f})")
    print(f"flagd-core / client: {measured.ratio:.1f}x")
