"""The peak memory of a sidecar pushed to its request limits: what deploy/'s memory limit rests on.

Serves a generated flag file as deploy/kubernetes/deployment.yaml serves its ConfigMap (no
exporter), then drives it as hard as the default limits allow, from more client threads than the
server has workers: debug EvaluateAll over every flag with a context at --max-context-keys /
--max-context-bytes (answers up to --max-response-bytes), flagd ResolveAll, and Track streams
carrying --max-event-details-bytes of details. Prints the process's peak RSS (VmHWM).

    python -m bench.memory_limits --flags 1000 --seconds 20 --threads 16
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf import struct_pb2

from bench import flagsets
from bench.run import REPO, terminate, wait_serving
from flagd.evaluation.v1 import evaluation_pb2 as flagd_v1
from flagd.evaluation.v1 import evaluation_pb2_grpc as flagd_v1_grpc
from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc, event_pb2, event_pb2_grpc


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def big_context() -> struct_pb2.Struct:
    """256 keys in just under 64 KiB: the default context limits."""
    context = struct_pb2.Struct()
    context.update({f"k{i:03}": "x" * 230 for i in range(255)})
    context.update({"plan": "pro"})
    return context


def drive(target: str, stop: threading.Event, seconds: float, codes: Counter[str]) -> None:
    with grpc.insecure_channel(target) as channel:
        native = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        flagd = flagd_v1_grpc.ServiceStub(channel)
        events = event_pb2_grpc.EventServiceStub(channel)
        user = evaluation_pb2.User(id="user-1", context=big_context())
        details = struct_pb2.Struct()
        details.update({"blob": "y" * (60 * 1024)})

        def tracks() -> Iterator[event_pb2.TrackRequest]:
            for _ in range(20):
                yield event_pb2.TrackRequest(name="checkout", user=user, details=details)

        everything = evaluation_pb2.EvaluateAllRequest(user=user, debug=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop.is_set():
            for call in (
                lambda: native.EvaluateAll(everything, timeout=10),
                lambda: flagd.ResolveAll(flagd_v1.ResolveAllRequest(context=user.context), timeout=10),
                lambda: events.Track(tracks(), timeout=10),
            ):
                try:
                    call()
                    codes["OK"] += 1
                except grpc.RpcError as error:  # a refusal over a limit is an answer too
                    codes[error.code().name] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        flag_file = flagsets.write_flag_file(Path(directory), args.flags)
        port, management = free_port(), free_port()
        command = [
            *(sys.executable, "-m", "sidecar.cli", "serve", "--flags", str(flag_file)),
            *("--listen", f"127.0.0.1:{port}", "--flagd-listen", "on"),
            *("--management-listen", f"127.0.0.1:{management}", "--log-level", "error"),
        ]
        process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
        try:
            target = f"127.0.0.1:{port}"
            wait_serving(target, process)
            idle = peak_rss_mb(process.pid)
            stop = threading.Event()
            codes: Counter[str] = Counter()
            threads = [
                threading.Thread(target=drive, args=(target, stop, args.seconds, codes))
                for _ in range(args.threads)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(
                f"{args.flags:,} flags, {args.threads} client threads for {args.seconds:.0f} s: "
                f"peak RSS {idle:.1f} MB after start, {peak_rss_mb(process.pid):.1f} MB under load"
                f" (answers: {dict(codes)})"
            )
        finally:
            terminate(process)


if __name__ == "__main__":
    main()
