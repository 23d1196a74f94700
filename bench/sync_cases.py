"""The sync stream (flagsidecar.v1.SyncService on --sync-listen) against a real control-plane process:

    .venv/bin/python -m bench.sync_cases [--changes 30] [--idle-seconds 30]
    .venv/bin/python -m bench.sync_cases --before REV [--rounds 4] [--changes 30]

- propagation: 100 Watch subscribers (10 connections of 10 streams, grpc.aio in this process);
  the control plane's 100-flag file is rewritten (as a ConfigMap edit is), and each subscriber's
  latency is measured two ways: from the write to the arrival of the delta (end to end: the file
  watcher's settle time and the control plane's reload included), and from the control plane's
  applying it to the arrival (the fan-out alone: a revision is the wall clock in microseconds
  when the fan-out stamped it, right after the store applied the set).
- downstream sidecars: 5 real `--source grpc://` sidecar processes; from the write to each one's
  log line saying it applied the set (its own reload included: from then on it serves it).
- idle streams: 1,000 Watch streams (100 connections of 10) held open with nothing changing: the
  control plane's RSS before and after (per stream), its thread count, and its CPU over a window
  against the same window with no stream (the heartbeat every 30 s included).

`--before REV` measures the propagation alone, this checkout's control plane and REV's (a detached
worktree) in turns, and prints each side's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from flagsidecar.v1 import sync_pb2, sync_pb2_grpc

from .rpc import REPO, cpu_seconds_ticks, memory_mb

SUBSCRIBERS = 100
IDLE_STREAMS = 1000
STREAMS_PER_CONNECTION = 10
DOWNSTREAMS = 5


@dataclass
class SyncResult:
    propagation_ms: dict[str, list[float]] = field(default_factory=dict)  # what -> latencies
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    idle_streams: int = 0
    threads_before: int = 0
    threads_after: int = 0
    cpu_idle_none: float = 0.0  # CPU seconds per wall second, no stream
    cpu_idle_streams: float = 0.0  # with IDLE_STREAMS streams

    @property
    def kib_per_stream(self) -> float:
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / max(1, self.idle_streams)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _flags(variant: str, count: int = 100) -> dict[str, Any]:
    flags = [
        {
            "key": f"flag-{index}",
            "enabled": True,
            "variants": [{"key": "a", "value": 1}, {"key": "b", "value": 2}],
            "defaultVariantWhenOn": variant if index == 0 else "a",
            "rules": [
                {
                    "constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["pro"]}],
                    "distributions": [{"variant": "b", "percentage": 100}],
                }
            ],
        }
        for index in range(count)
    ]
    return {"flags": flags}


def _write(path: Path, text: bytes) -> None:
    """An atomic replace, as a ConfigMap edit or a config tool writes: a whole temporary file, then
    renamed over the flag file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(text)
    os.replace(temporary, path)


class ControlPlane:
    """A control-plane process of the checkout at `repo` (this one, or `--before`'s revision)."""

    def __init__(self, directory: Path, repo: Path = REPO) -> None:
        self.flag_file = directory / "flags.yaml"
        self.variant = "a"
        # Both versions serialized before any clock starts: dumping 100 flags in pure-Python YAML
        # took longer than the control plane's whole way from the rename to the fan-out.
        self.texts = {variant: yaml.safe_dump(_flags(variant)).encode() for variant in ("a", "b")}
        _write(self.flag_file, self.texts[self.variant])
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_SIDECAR_")}
        env["FLAG_SIDECAR_MANAGEMENT_LISTEN"] = "off"
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "sidecar.cli", "serve", "--flags", str(self.flag_file),
                "--listen", "127.0.0.1:0", "--sync-listen", f"127.0.0.1:{self.port}",
                "--sync-max-streams", "4096", "--log-level", "warning",
            ],
            cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.target = f"127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with grpc.insecure_channel(self.target) as channel:
                    sync_pb2_grpc.SyncServiceStub(channel).Fetch(sync_pb2.FetchRequest(), timeout=1)
                return
            except grpc.RpcError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the control plane did not start") from None
                time.sleep(0.1)

    def toggle(self) -> None:
        """Rewrite the flag file with flag-0's default changed (one flag changes)."""
        self.variant = "b" if self.variant == "a" else "a"
        _write(self.flag_file, self.texts[self.variant])

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/task"))

    def settled_threads(self, still_s: float = 0.5, limit_s: float = 5.0) -> int:
        """The thread count once it has held still for `still_s`: a thread that the phase before
        started late (a worker pool growing by one) is then not charged to the idle streams."""
        count, since, deadline = self.threads(), time.monotonic(), time.monotonic() + limit_s
        while time.monotonic() - since < still_s and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.threads()
            if now != count:
                count, since = now, time.monotonic()
        return count

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _open_streams(target: str, streams: int) -> tuple[list[grpc.aio.Channel], list[Any]]:
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, streams // STREAMS_PER_CONNECTION))
    ]
    calls = [
        sync_pb2_grpc.SyncServiceStub(channels[index % len(channels)]).Watch(sync_pb2.WatchRequest())
        for index in range(streams)
    ]
    for call in calls:
        await call.read()  # the whole set
    return channels, calls


async def _propagation(plane: ControlPlane, changes: int, result: SyncResult, subscribers: int) -> None:
    channels, calls = await _open_streams(plane.target, subscribers)
    end_to_end, fan_out = result.propagation_ms["end to end"], result.propagation_ms["fan-out"]
    try:
        for _ in range(changes):
            written = time.time()
            plane.toggle()

            async def arrival(call: Any) -> tuple[float, int]:
                while True:
                    response = await call.read()
                    if response.WhichOneof("update") == "delta" and response.delta.flags:
                        return time.time(), response.revision

            for moment, revision in await asyncio.gather(*(arrival(call) for call in calls)):
                end_to_end.append((moment - written) * 1000)
                fan_out.append((moment - revision / 1e6) * 1000)
            await asyncio.sleep(0.3)  # the file watcher's settle window is over before the next
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()


class Downstream:
    def __init__(self, target: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_SIDECAR_")}
        env["FLAG_SIDECAR_MANAGEMENT_LISTEN"] = "off"
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "sidecar.cli", "serve", "--source", f"grpc://{target}",
                "--listen", "127.0.0.1:0", "--log-format", "json", "--log-repeat-limit", "0",
            ],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.loaded: list[float] = []  # wall-clock times of its flags_loaded lines
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            record = json.loads(line)
            if record.get("event") == "flags_loaded":
                stamp = datetime.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
                self.loaded.append(stamp.timestamp())

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def _downstreams(plane: ControlPlane, changes: int, result: SyncResult, count: int) -> None:
    sidecars = [Downstream(plane.target) for _ in range(count)]
    latencies = result.propagation_ms["downstream sidecars"]
    try:
        deadline = time.monotonic() + 60
        while not all(sidecar.loaded for sidecar in sidecars):
            if time.monotonic() > deadline:
                raise RuntimeError("the downstream sidecars did not start")
            time.sleep(0.1)
        for round_ in range(changes):
            seen = [len(sidecar.loaded) for sidecar in sidecars]
            written = time.time()
            plane.toggle()
            deadline = time.monotonic() + 10
            while any(len(s.loaded) == n for s, n in zip(sidecars, seen, strict=True)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"a downstream sidecar did not apply change {round_}")
                time.sleep(0.005)
            latencies += [(s.loaded[n] - written) * 1000 for s, n in zip(sidecars, seen, strict=True)]
            time.sleep(0.3)
    finally:
        for sidecar in sidecars:
            sidecar.stop()


def _cpu_over(pid: int, seconds: float) -> float:
    start_cpu, start = cpu_seconds_ticks(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds_ticks(pid) - start_cpu) / (time.monotonic() - start)


async def _idle(plane: ControlPlane, result: SyncResult, seconds: float, streams: int) -> None:
    result.cpu_idle_none = await asyncio.to_thread(_cpu_over, plane.process.pid, seconds)
    result.rss_before_mb = memory_mb(plane.process.pid)[0]
    result.threads_before = await asyncio.to_thread(plane.settled_threads)
    channels, calls = await _open_streams(plane.target, streams)
    try:
        await asyncio.sleep(2)
        result.idle_streams = len(calls)
        result.rss_after_mb = memory_mb(plane.process.pid)[0]
        result.threads_after = plane.threads()
        result.cpu_idle_streams = await asyncio.to_thread(_cpu_over, plane.process.pid, seconds)
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()


def run(
    changes: int = 30,
    idle_seconds: float = 30.0,
    subscribers: int = SUBSCRIBERS,
    idle_streams: int = IDLE_STREAMS,
    downstreams: int = DOWNSTREAMS,
) -> SyncResult:
    result = SyncResult()
    for name in ("end to end", "fan-out", "downstream sidecars"):
        result.propagation_ms[name] = []
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as directory:
        plane = ControlPlane(Path(directory))
        try:
            asyncio.run(_propagation(plane, changes, result, subscribers))
            _downstreams(plane, changes, result, downstreams)
            asyncio.run(_idle(plane, result, idle_seconds, idle_streams))
        finally:
            plane.stop()
    return result


def compare(before: str, rounds: int = 4, changes: int = 30) -> dict[str, SyncResult]:
    """Propagation only, this checkout's control plane and revision `before`'s in turns (A/B/A/B:
    the machine's load falls on both alike), `changes` changes a round; the result per side."""
    results = {"this": SyncResult(), before: SyncResult()}
    for result in results.values():
        result.propagation_ms = {"end to end": [], "fan-out": []}
    with tempfile.TemporaryDirectory(prefix="bench-sync-before-") as checkout:
        add = ["git", "worktree", "add", "--detach", checkout, before]
        subprocess.run(add, cwd=REPO, check=True, capture_output=True)
        try:
            repos = {"this": REPO, before: Path(checkout)}
            for _ in range(rounds):
                for side, repo in repos.items():
                    with tempfile.TemporaryDirectory(prefix="bench-sync-") as directory:
                        plane = ControlPlane(Path(directory), repo)
                        try:
                            asyncio.run(_propagation(plane, changes, results[side], SUBSCRIBERS))
                        finally:
                            plane.stop()
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", checkout], cwd=REPO, check=False)
    return results


def summary_of_propagation(result: SyncResult) -> dict[str, Any]:
    return {
        f"propagation, {way}, ms": {
            "samples": len(values),
            "p50": round(statistics.median(values), 1),
            "p99": round(percentile(values, 0.99), 1),
            "max": round(max(values), 1),
        }
        for way, values in result.propagation_ms.items()
    }


def summary(result: SyncResult) -> dict[str, Any]:
    out = summary_of_propagation(result)
    out["idle streams"] = result.idle_streams
    out["RSS before / after, MB"] = (round(result.rss_before_mb, 1), round(result.rss_after_mb, 1))
    out["memory per idle stream, KiB"] = round(result.kib_per_stream, 1)
    out["threads before / after"] = (result.threads_before, result.threads_after)
    out[f"CPU, % of a core: no stream / {result.idle_streams:,} idle streams"] = (
        round(result.cpu_idle_none * 100, 2),
        round(result.cpu_idle_streams * 100, 2),
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--before", metavar="REV", help="propagation alone, against REV's control plane")
    parser.add_argument("--rounds", type=int, default=4, help="with --before: rounds of each")
    args = parser.parse_args()
    if args.before:
        compared = compare(args.before, args.rounds, args.changes)
        out = {side: summary_of_propagation(result) for side, result in compared.items()}
        print(json.dumps(out, indent=2))
        return 0
    print(json.dumps(summary(run(args.changes, args.idle_seconds)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
