"""The OpenFeature Python SDK + flagd provider (RPC resolver) against a running sidecar.

Runs in its own process, never inside pytest: the provider registers its own copy of flagd's
protobuf messages, which cannot share a process with the sidecar's (proto/flagd/README.md).

    python py_client.py --port PORT --flag-file FLAGS.yaml --changed-file CHANGED.yaml

Runs the checks of checks.json, then replaces the flag file with the changed one and waits for
PROVIDER_CONFIGURATION_CHANGED; prints one JSON report on stdout (see tests/flagd/test_clients.py).
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
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

CHECKS = Path(__file__).with_name("checks.json")


def evaluate(client: Any, check: dict[str, Any]) -> dict[str, Any]:
    context = EvaluationContext(targeting_key=check.get("targetingKey"), attributes=check.get("context", {}))
    method = {
        "boolean": client.get_boolean_details,
        "string": client.get_string_details,
        "integer": client.get_integer_details,
        "float": client.get_float_details,
        "object": client.get_object_details,
    }[check["type"]]
    details = method(check["flag"], check["default"], context)
    return {
        "value": details.value,
        "reason": str(details.reason.value if hasattr(details.reason, "value") else details.reason),
        "variant": details.variant,
        "errorCode": details.error_code.value if details.error_code else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--flag-file", type=Path, required=True)
    parser.add_argument("--changed-file", type=Path, required=True)
    args = parser.parse_args()
    spec = json.loads(CHECKS.read_text())
    report: dict[str, Any] = {"client": "python"}

    changed = threading.Event()
    changed_flags: list[str] = []

    def on_change(details: EventDetails) -> None:
        changed_flags.extend(details.flags_changed or [])
        if spec["changedFlag"] in changed_flags:
            changed.set()

    provider = FlagdProvider(
        resolver_type=ResolverType.RPC,
        host=args.host,
        port=args.port,
        tls=False,
        # Long enough that an answer the provider retries (UNKNOWN) until its deadline shows in
        # report["seconds"] (test_clients.py checks the no-default answer is prompt).
        deadline_ms=5000,
        retry_backoff_ms=100,
        retry_backoff_max_ms=500,
        retry_grace_period=2,
    )
    started = time.monotonic()
    api.set_provider_and_wait(provider)
    client = api.get_client()
    report["ready"] = client.get_provider_status() == ProviderStatus.READY
    report["readySeconds"] = round(time.monotonic() - started, 3)
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)

    report["results"], report["seconds"] = {}, {}
    for check in spec["checks"]:
        check_started = time.monotonic()
        report["results"][check["name"]] = evaluate(client, check)
        report["seconds"][check["name"]] = round(time.monotonic() - check_started, 3)

    # Edit the flag file as a deploy would: write aside, then rename over it.
    temporary = args.flag_file.with_name(args.flag_file.name + ".edit")
    shutil.copyfile(args.changed_file, temporary)
    os.replace(temporary, args.flag_file)
    report["configurationChanged"] = changed.wait(timeout=10)
    report["flagsChanged"] = sorted(set(changed_flags))
    report["afterChange"] = {check["name"]: evaluate(client, check) for check in spec["afterChange"]}

    api.shutdown()
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
