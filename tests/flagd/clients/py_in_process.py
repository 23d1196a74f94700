"""The OpenFeature Python SDK + flagd provider in in-process mode (SyncFlags on the sync listener)
next to the same provider in RPC mode, against one running sidecar.

Runs in its own process, never inside pytest (proto/flagd/README.md: the provider's protobuf
messages cannot share a process with the sidecar's).

    python py_in_process.py --rpc-port P --sync-port S --checks CHECKS.json
        [--selector SEL] [--flag-file F --changed-file C --changed-flag KEY] [--rpc-only]

CHECKS.json is a list of {flag, type, default, targetingKey, context}. Each is evaluated by both
providers; then, with --changed-file, the flag file is replaced and, once the in-process provider
reports PROVIDER_CONFIGURATION_CHANGED for --changed-flag, the checks of that flag run again.
One JSON report goes to stdout (tests/flagd/test_in_process.py reads it). --rpc-only evaluates
with the RPC provider alone: the sidecar's answers, next to which the test puts another language's
in-process ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus
from py_client import evaluate  # this script's directory is on sys.path


def wait_ready(client: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.get_provider_status() == ProviderStatus.READY:
            return True
        time.sleep(0.05)
    return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rpc-port", type=int, required=True)
    parser.add_argument("--sync-port", type=int, required=True)
    parser.add_argument("--checks", type=Path, required=True)
    parser.add_argument("--selector")
    parser.add_argument("--flag-file", type=Path)
    parser.add_argument("--changed-file", type=Path)
    parser.add_argument("--changed-flag")
    parser.add_argument("--rpc-only", action="store_true")
    args = parser.parse_args()
    checks = json.loads(args.checks.read_text())

    changed = threading.Event()

    def on_change(details: EventDetails) -> None:
        if args.changed_flag in (details.flags_changed or []):
            changed.set()

    options: dict[str, Any] = {
        "host": args.host,
        "tls": False,
        "deadline_ms": 5000,
        "retry_backoff_ms": 100,
        "retry_backoff_max_ms": 500,
        "retry_grace_period": 2,
        "cache": "disabled",  # every answer is the provider's own, not a cached one
    }
    rpc = FlagdProvider(resolver_type=ResolverType.RPC, port=args.rpc_port, **options)
    api.set_provider(rpc, "rpc")
    remote = api.get_client("rpc")
    if args.rpc_only:
        report: dict[str, Any] = {"rpcReady": wait_ready(remote, 10)}
        if report["rpcReady"]:
            report["results"] = [{"rpc": evaluate(remote, c)} for c in checks]
        json.dump(report, sys.stdout)
        api.shutdown()
        return 0
    in_process = FlagdProvider(
        resolver_type=ResolverType.IN_PROCESS, port=args.sync_port, selector=args.selector, **options
    )
    api.set_provider(in_process, "in-process")
    local = api.get_client("in-process")
    local.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
    report = {
        "ready": wait_ready(local, 10),
        "rpcReady": wait_ready(remote, 10),
    }
    report["syncContext"] = in_process.enriched_context
    if report["ready"] and report["rpcReady"]:
        report["results"] = [{"inProcess": evaluate(local, c), "rpc": evaluate(remote, c)} for c in checks]
        if args.changed_file is not None:
            changed.clear()  # the first sync reports every flag as changed
            shutil.copyfile(args.changed_file, args.flag_file.with_suffix(".tmp"))
            os.replace(args.flag_file.with_suffix(".tmp"), args.flag_file)
            report["changed"] = changed.wait(15)
            again = [c for c in checks if c["flag"] == args.changed_flag]
            report["afterChange"] = [
                {"inProcess": evaluate(local, c), "rpc": evaluate(remote, c)} for c in again
            ]
    json.dump(report, sys.stdout)
    api.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
