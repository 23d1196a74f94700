"""The real OpenFeature Python flagd provider in in-process mode against a real sidecar process.

`flag-sidecar serve --flags ... --sync-listen ...` serves flagd.sync.v1 on its sync listener; the
provider (clients/py_in_process.py, in its own process) follows SyncFlags and evaluates with
openfeature-flagd-core, next to the same provider in RPC mode on the sidecar's --listen port.
For every check whose flag is served in-process, both answer the same value, variant and reason;
a flag left out is listed in the sync context and is FLAG_NOT_FOUND in-process, never a wrong
answer; an edit of the flag file reaches the in-process provider; the sidecar's --context-value
pairs reach it through sync_context.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import eventually, write_flag_file
from tests.flagd.go_client import BUILD_TIMEOUT as GO_BUILD_TIMEOUT
from tests.serve_process import ServeProcess
from tests.sync.test_flagd_translation import CONTEXTS, MISSING, constraint, document, rule_flag

HERE = Path(__file__).parent
CONFORMANCE = HERE.parent / "conformance"
CLIENT = HERE / "clients" / "py_in_process.py"
DEFAULTS = {"boolean": False, "string": "code-default", "integer": -1, "float": -1.5, "object": {}}
# The conformance flags flagd's in-process providers cannot evaluate exactly (docs/sync.md).
EVERY_PROVIDER = pytest.mark.parametrize("provider", ["python", "go"])
CONFORMANCE_LEFT_OUT = {
    "targeting": "GREATER_OR_EQUAL",
    "operators": "ONE_OF with number or boolean values",
    "number-no-default": "a fractional number",
    "split-user": "percentage split",
    "split-account": "percentage split",
    "split-typed": "percentage split",
}


def flag_type(flag: dict[str, Any]) -> str:
    values = [variant["value"] for variant in flag["variants"]]
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if all(isinstance(v, int | float) for v in values):
        return "float"
    return "object"


def check(flag_key: str, kind: str, targeting_key: str | None, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "flag": flag_key,
        "type": kind,
        "default": DEFAULTS[kind],
        "targetingKey": targeting_key,
        "context": context,
    }


class InProcessRun:
    def __init__(
        self, tmp_path: Path, flags: dict[str, Any], *serve_options: str, go_client: Path | None = None
    ) -> None:
        self.go_client = go_client
        self.flag_file = write_flag_file(tmp_path / "flags.yaml", flags)
        self.tmp_path = tmp_path
        self.process = ServeProcess(self.flag_file, "--sync-listen", "127.0.0.1:0", *serve_options)

        def ports() -> tuple[int, int] | None:
            if self.process.process.poll() is not None:
                pytest.fail(f"serve exited early:\n{self.process.log}")
            listen = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.process.log)
            sync = re.search(r"sync listener on 127\.0\.0\.1:(\d+)", self.process.log)
            return (int(listen.group(1)), int(sync.group(1))) if listen and sync else None

        self.rpc_port, self.sync_port = eventually(ports, timeout=15)

    def run(self, checks: list[dict[str, Any]], *extra: str) -> dict[str, Any]:
        """The report of the in-process provider under test (Python's, or Go's with --go)."""
        if self.go_client is not None:
            return self._run_go(checks, *extra)
        return self._run_python(checks, *extra)

    def _run_python(self, checks: list[dict[str, Any]], *extra: str) -> dict[str, Any]:
        checks_file = self.tmp_path / "checks.json"
        checks_file.write_text(json.dumps(checks))
        completed = subprocess.run(
            [
                sys.executable,
                str(CLIENT),
                "--rpc-port",
                str(self.rpc_port),
                "--sync-port",
                str(self.sync_port),
                "--checks",
                str(checks_file),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout)

    def _run_go(self, checks: list[dict[str, Any]], *extra: str) -> dict[str, Any]:
        """The Go provider's in-process answers next to the sidecar's RPC ones, which the Python
        provider gives (the Go provider's RPC mode speaks the Connect protocol, not gRPC): before
        the Go run and, for the edited flag, after it."""
        assert self.go_client is not None
        rpc = self._run_python(checks, "--rpc-only")
        checks_file = self.tmp_path / "go-checks.json"
        checks_file.write_text(json.dumps(checks))
        completed = subprocess.run(
            [
                str(self.go_client),
                "in-process",
                "--sync-port",
                str(self.sync_port),
                "--checks",
                str(checks_file),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stderr[-4000:]
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        assert report["client"] == "go"
        report["rpcReady"] = rpc["rpcReady"]
        if "results" in report:  # the provider became ready
            for result, answer in zip(report["results"], rpc["results"], strict=True):
                result["rpc"] = answer["rpc"]
        if report.get("afterChange"):
            changed_flag = extra[extra.index("--changed-flag") + 1]
            again = self._run_python([c for c in checks if c["flag"] == changed_flag], "--rpc-only")
            for result, answer in zip(report["afterChange"], again["results"], strict=True):
                result["rpc"] = answer["rpc"]
        return report

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def provider() -> str:
    """The in-process provider under test; the tests that every one must pass parametrize it."""
    return "python"


@pytest.fixture
def start(tmp_path, provider, request):
    runs: list[InProcessRun] = []
    go_client = request.getfixturevalue("go_client") if provider == "go" else None

    def started(flags: dict[str, Any], *serve_options: str) -> InProcessRun:
        runs.append(InProcessRun(tmp_path, flags, *serve_options, go_client=go_client))
        return runs[-1]

    yield started
    for run in runs:
        run.stop()


def conformance_checks(flags: dict[str, Any]) -> list[dict[str, Any]]:
    types = {flag["key"]: flag_type(flag) for flag in flags["flags"]}
    vectors = json.loads((CONFORMANCE / "vectors.json").read_text())["vectors"]
    checks = []
    for vector in vectors:
        request = vector["request"]
        key = request.get("flag_key")
        if vector["method"] != "Evaluate" or not key:
            continue
        user = request.get("user") or {}
        checks.append(check(key, types.get(key, "string"), user.get("id"), user.get("context", {})))
    return checks


def as_flagd_says(answer: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's answer as flagd's in-process evaluator words it: flagd has no SPLIT reason,
    its fractional answers TARGETING_MATCH."""
    return {**answer, "reason": "TARGETING_MATCH" if answer["reason"] == "SPLIT" else answer["reason"]}


def assert_served_alike(report: dict[str, Any], checks: list[dict[str, Any]]) -> int:
    """Every check of a served flag answers alike; every left-out one is FLAG_NOT_FOUND. Returns
    how many were served."""
    left_out = report["syncContext"]["$flagSidecar"]["leftOut"]
    served = 0
    for each, result in zip(checks, report["results"], strict=True):
        local, remote = result["inProcess"], result["rpc"]
        if each["flag"] in left_out:
            assert local["errorCode"] == "FLAG_NOT_FOUND", (each, result)
            assert local["value"] == each["default"]
        else:
            assert local == as_flagd_says(remote), each
            served += local["errorCode"] is None
    return served


@EVERY_PROVIDER
@pytest.mark.timeout(GO_BUILD_TIMEOUT + 120)
def test_the_in_process_provider_answers_the_conformance_vectors_as_the_sidecar(start, tmp_path):
    flags = yaml.safe_load((CONFORMANCE / "flags.yaml").read_text())
    run = start(flags)
    changed = copy.deepcopy(flags)
    next(f for f in changed["flags"] if f["key"] == "static-string")["defaultVariantWhenOn"] = "red"
    changed_file = write_flag_file(tmp_path / "changed.yaml", changed)
    checks = conformance_checks(flags)

    report = run.run(
        checks,
        "--flag-file",
        str(run.flag_file),
        "--changed-file",
        str(changed_file),
        "--changed-flag",
        "static-string",
    )

    assert report["ready"], report
    assert report["rpcReady"], report
    context = report["syncContext"]["$flagSidecar"]
    assert context["flagSet"] == "default"
    assert set(context["leftOut"]) == set(CONFORMANCE_LEFT_OUT)
    for key, why in CONFORMANCE_LEFT_OUT.items():
        assert why in context["leftOut"][key]
    served = assert_served_alike(report, checks)
    assert served >= 3  # static-string, disabled-bool, disabled-no-default (value or code default)
    unknown = next(r for c, r in zip(checks, report["results"], strict=True) if c["flag"] == "no-such-flag")
    assert unknown["inProcess"]["errorCode"] == unknown["rpc"]["errorCode"] == "FLAG_NOT_FOUND"
    # The edit reached the in-process provider, which answers as the sidecar does.
    assert report["changed"], report
    assert report["afterChange"]
    for result in report["afterChange"]:
        assert result["inProcess"] == result["rpc"]
        assert result["inProcess"]["value"] == "#d62728"


@EVERY_PROVIDER
@pytest.mark.timeout(GO_BUILD_TIMEOUT + 120)
def test_every_translated_operator_answers_every_context_as_the_sidecar(start):
    run = start(document())
    checks = []
    for flag in document()["flags"]:
        kinds = ["integer", "float"] if flag_type(flag) in ("integer", "float") else [flag_type(flag)]
        for targeting_key, value in CONTEXTS:
            for kind in kinds:
                checks.append(
                    check(flag["key"], kind, targeting_key, {} if value is MISSING else {"plan": value})
                )

    report = run.run(checks)

    assert report["ready"], report
    assert report["rpcReady"], report
    assert report["syncContext"]["$flagSidecar"]["leftOut"] == {}
    assert assert_served_alike(report, checks) == len(checks)


@EVERY_PROVIDER
@pytest.mark.timeout(GO_BUILD_TIMEOUT + 120)
def test_a_selector_for_another_flag_set_is_refused_and_flagds_form_is_understood(start):
    run = start(yaml.safe_load((CONFORMANCE / "flags.yaml").read_text()))
    one = [check("static-string", "string", "u1", {})]
    assert run.run(one, "--selector", "flagSetId=default")["results"][0]["inProcess"]["value"] == "#1f77b4"
    assert run.run(one, "--selector", "flag-set=default")["results"][0]["inProcess"]["variant"] == "blue"
    refused = run.run(one, "--selector", "flag-set=other")
    assert not refused["ready"]  # SyncFlags answered NOT_FOUND


def test_the_sidecar_logs_what_it_left_out(start):
    run = start(yaml.safe_load((CONFORMANCE / "flags.yaml").read_text()))
    run.run([check("static-string", "string", "u1", {})])
    eventually(lambda: "left out for in-process providers" in run.process.log, timeout=5)
    assert "split-user: percentage split" in run.process.log


@EVERY_PROVIDER
@pytest.mark.timeout(GO_BUILD_TIMEOUT + 120)
def test_context_values_reach_the_in_process_provider_and_header_mapped_properties_are_left_out(start):
    flags = {
        "flags": [
            rule_flag("by-region", constraint("ONE_OF", "eu", prop="region")),
            rule_flag("by-tenant", constraint("ONE_OF", "acme", prop="tenant")),
        ]
    }
    run = start(flags, "--context-value", "region=eu", "--context-from-header", "x-tenant=tenant")
    checks = [
        check("by-region", "string", "u1", {}),
        check("by-region", "string", "u1", {"region": "us"}),  # the sidecar's value wins, as flagd's -X
        check("by-tenant", "string", "u1", {"tenant": "acme"}),
    ]

    report = run.run(checks)

    assert report["ready"], report
    assert report["syncContext"]["region"] == "eu"
    assert "--context-from-header" in report["syncContext"]["$flagSidecar"]["leftOut"]["by-tenant"]
    assert assert_served_alike(report, checks) == 2
    assert [r["inProcess"]["variant"] for r in report["results"][:2]] == ["yes", "yes"]


def split_flag(key: str, bucket_by: str | None, *before: dict[str, Any]) -> dict[str, Any]:
    """A three-way split (bucketed on `bucket_by`, the user id when None) after the given rules,
    then a rule matching everyone: a value the split cannot bucket on reaches that one."""
    split: dict[str, Any] = {
        "id": "split",
        "distributions": [
            {"variant": "a", "percentage": 33.33},
            {"variant": "b", "percentage": 33.33},
            {"variant": "c", "percentage": 33.34},
        ],
    }
    if bucket_by is not None:
        split["bucketBy"] = bucket_by
    return {
        "key": key,
        "enabled": True,
        "variants": [{"key": k, "value": k.upper()} for k in ("a", "b", "c", "rest")],
        "defaultVariantWhenOn": "a",
        "rules": [*before, split, {"id": "rest", "distributions": [{"variant": "rest", "percentage": 100}]}],
    }


# Bucket values whose text flagd's Go JsonLogic writes as ours: strings (whitespace at either end
# included), booleans, whole numbers within 2^53 (-0 as 0), other numbers from 1e-4 up; and what
# no split buckets on.
EXACT_BUCKET_VALUES: list[Any] = [
    "pro", "", " pad ", "trail\t", "é-ü", "42", "4.50", True, False, 0, -0.0, 5, 5.0, -7, 2**53,
    1.5, -0.25, 1234567.5, 0.0001, None, ["pro"], {"plan": "pro"}, MISSING,
]  # fmt: skip
# Numbers it writes otherwise: served as an error (the caller's default), never another bucket.
INEXACT_BUCKET_VALUES: list[Any] = [2**60, 1e20, 1e-05, -2.5e-07]


@pytest.mark.parametrize("provider", ["go"])
@pytest.mark.timeout(GO_BUILD_TIMEOUT + 120)
def test_a_fractional_v2_provider_gets_splits_and_lands_in_the_sidecars_buckets(start):
    flags = {
        "flags": [
            split_flag("by-user", None),
            split_flag("by-plan", "plan"),
            split_flag(
                "after-rule",
                "plan",
                {
                    "constraints": [constraint("ONE_OF", "pro")],
                    "distributions": [{"variant": "rest", "percentage": 100}],
                },
            ),
            split_flag("by-region", "region"),  # set by --context-value: a constant bucket
        ]
    }
    run = start(flags, "--context-value", "region=eu")
    users = [check("by-user", "string", f"user-{n}", {}) for n in range(150)]
    users.append(check("by-user", "string", "", {}))  # no user id: the split does not apply
    values = [*EXACT_BUCKET_VALUES, *INEXACT_BUCKET_VALUES]
    by_value = [
        check(key, "string", "u1", {} if value is MISSING else {"plan": value})
        for key in ("by-plan", "after-rule")
        for value in values
    ]
    region = [check("by-region", "string", f"user-{n}", {}) for n in range(3)]
    checks = [*users, *by_value, *region]

    report = run.run(checks, "--provider-id", "checkout,fractional=v2")

    assert report["ready"], report
    assert report["syncContext"]["$flagSidecar"]["leftOut"] == {}
    inexact = {json.dumps(v) for v in INEXACT_BUCKET_VALUES}
    variants = set()
    for each, result in zip(checks, report["results"], strict=True):
        local, remote = result["inProcess"], result["rpc"]
        if json.dumps(each["context"].get("plan")) in inexact:
            assert local["errorCode"] == "GENERAL", (each, result)  # flagd: a variant the flag lacks
            assert local["value"] == each["default"]
            continue
        # flagd has no SPLIT reason: its fractional answers TARGETING_MATCH.
        expected = {
            **remote,
            "reason": "TARGETING_MATCH" if remote["reason"] == "SPLIT" else remote["reason"],
        }
        assert local == expected, (each, result)
        variants.add(remote["variant"])
    assert variants == {"a", "b", "c", "rest"}
    # Without fractional=v2 in its provider_id, a provider gets no splits (the Python one hashes as v3).
    plain = run.run(checks[:1])
    assert set(plain["syncContext"]["$flagSidecar"]["leftOut"]) == {flag["key"] for flag in flags["flags"]}


@pytest.mark.parametrize("provider", ["go"])
@pytest.mark.timeout(GO_BUILD_TIMEOUT + 120)
def test_a_fractional_v2_provider_answers_the_conformance_splits_as_the_sidecar(start):
    """The shared vectors' splits (a user id, a string account, whole numbers and booleans as
    bucket values) reach a provider saying fractional=v2 and land where the sidecar puts them."""
    flags = yaml.safe_load((CONFORMANCE / "flags.yaml").read_text())
    run = start(flags)
    checks = conformance_checks(flags)

    report = run.run(checks, "--provider-id", "fractional=v2")

    assert report["ready"], report
    left_out = report["syncContext"]["$flagSidecar"]["leftOut"]
    splits = {key for key in CONFORMANCE_LEFT_OUT if key.startswith("split-")}
    assert set(left_out) == set(CONFORMANCE_LEFT_OUT) - splits
    inexact = {json.dumps(v) for v in INEXACT_BUCKET_VALUES}
    splits_served = 0
    for each, result in zip(checks, report["results"], strict=True):
        local, remote = result["inProcess"], result["rpc"]
        if json.dumps(each["context"].get("orgNumber")) in inexact:
            assert local["errorCode"] == "GENERAL", (each, result)
        elif each["flag"] not in left_out:
            assert local == as_flagd_says(remote), each
            splits_served += remote["reason"] == "SPLIT"
    assert splits_served >= 10
