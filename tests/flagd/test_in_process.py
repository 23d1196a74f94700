"""The real OpenFeature Python, Java and Go flagd providers in in-process mode against a real sidecar.

`flag-sidecar serve --flags ... --sync-listen ...` serves flagd.sync.v1 on its sync listener; the
provider (clients/py_in_process.py, in its own process) follows SyncFlags and evaluates with
openfeature-flagd-core, next to the same provider in RPC mode on the sidecar's --listen port.
For every check whose flag is served in-process, both answer the same value, variant and reason;
a flag left out is listed in the sync context and is FLAG_NOT_FOUND in-process, never a wrong
answer; an edit of the flag file reaches the in-process provider; the sidecar's --context-value
pairs reach it through sync_context. The Java provider (java_client.py: FlagdClient's in-process
mode, same options and report) and the Go one (go_client.py: tests/flagd/go, in-process here, its RPC mode
in test_clients.py against --flagd-connect-listen; the sidecar's RPC answers next to it are the
Python provider's) run the same tests (the `provider`
fixture), each held to its own documented differences (`Provider.expected`); the split tests at the
end are Java's and Go's (fractional=v2).
"""

from __future__ import annotations

import copy
import json
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mmh3
import pytest
import yaml

from sidecar.engine import build_context, compile_flag_set, evaluate
from tests.conftest import eventually, write_flag_file
from tests.flagd.go_client import BUILD_TIMEOUT as GO_BUILD_TIMEOUT
from tests.serve_process import ServeProcess
from tests.sync.test_flagd_translation import CONTEXTS, MISSING, constraint, document, rule_flag

HERE = Path(__file__).parent
CONFORMANCE = HERE.parent / "conformance"
CLIENT = HERE / "clients" / "py_in_process.py"
DEFAULTS = {"boolean": False, "string": "code-default", "integer": -1, "float": -1.5, "object": {}}
# The conformance flags flagd's in-process providers cannot evaluate exactly (docs/sync.md).
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
    def __init__(self, tmp_path: Path, flags: dict[str, Any], *serve_options: str) -> None:
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

    def run(
        self, checks: list[dict[str, Any]], *extra: str, provider: Provider | None = None
    ) -> dict[str, Any]:
        """The report of one run of a provider's client program (Python's when None)."""
        provider = provider or PYTHON
        # Taken before the run, which may edit the flag file (--changed-file).
        rpc_answers = None if provider.rpc else self.run(checks, "--rpc-only")
        rpc = ("--rpc-port", str(self.rpc_port)) if provider.rpc else ()
        checks_file = self.tmp_path / "checks.json"
        checks_file.write_text(json.dumps(checks))
        completed = subprocess.run(
            [
                *provider.command,
                *rpc,
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
        report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        if rpc_answers is not None:
            self._add_rpc_answers(report, rpc_answers, checks, extra)
        return report

    def _add_rpc_answers(
        self,
        report: dict[str, Any],
        rpc: dict[str, Any],
        checks: list[dict[str, Any]],
        extra: Sequence[str],
    ) -> None:
        """The sidecar's RPC answers (`rpc`), which the Python provider gives, next to the in-process
        ones of a provider without gRPC (Go's RPC mode speaks Connect over HTTP/1.1): for the checks
        and, for the edited flag, after the change."""
        report["rpcReady"] = rpc["rpcReady"]
        if "results" in report:  # the provider became ready
            for result, answer in zip(report["results"], rpc["results"], strict=True):
                result["rpc"] = answer["rpc"]
        if report.get("afterChange"):
            changed_flag = extra[list(extra).index("--changed-flag") + 1]
            again = self.run([c for c in checks if c["flag"] == changed_flag], "--rpc-only")
            for result, answer in zip(report["afterChange"], again["results"], strict=True):
                result["rpc"] = answer["rpc"]

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def start(tmp_path):
    runs: list[InProcessRun] = []

    def started(flags: dict[str, Any], *serve_options: str) -> InProcessRun:
        runs.append(InProcessRun(tmp_path, flags, *serve_options))
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


Answer = dict[str, Any]


def same_answer(check: dict[str, Any], rpc: Answer) -> Answer:
    """What the in-process provider must answer, given the same provider's RPC answer."""
    return rpc


def as_flagd_says(check: dict[str, Any], rpc: Answer) -> Answer:
    """The sidecar's answer as flagd's in-process evaluators word it: flagd has no SPLIT reason,
    its fractional answers TARGETING_MATCH."""
    return {**rpc, "reason": "TARGETING_MATCH" if rpc["reason"] == "SPLIT" else rpc["reason"]}


def java_in_process_answer(check: dict[str, Any], rpc: Answer) -> Answer:
    """The Java provider (0.11.15): its RPC reads an answer without a value as the message's zero
    value (expectations.JAVA_PROVIDER_NO_VALUE), which is the caller's default; in-process it
    answers a disabled flag FLAG_NOT_FOUND (flagd-core 2.0 made DISABLED a success) and no default
    variant GENERAL, both with the caller's default; otherwise as flagd says."""
    if rpc["errorCode"] is None and rpc["variant"] == "" and rpc["reason"] in ("DISABLED", "DEFAULT"):
        code = "FLAG_NOT_FOUND" if rpc["reason"] == "DISABLED" else "GENERAL"
        return {"value": check["default"], "reason": "ERROR", "variant": None, "errorCode": code}
    return as_flagd_says(check, rpc)


@dataclass(frozen=True)
class Provider:
    """An in-process client program and what it answers for the sidecar's RPC answer. `rpc`: the
    program also answers by RPC itself (--rpc-port); otherwise the Python one does (--rpc-only)."""

    name: str
    command: Sequence[str]
    expected: Callable[[dict[str, Any], Answer], Answer]
    rpc: bool = True


PYTHON = Provider("python", (sys.executable, str(CLIENT)), same_answer)


def java_provider(java_client: list[str]) -> Provider:
    return Provider("java", [*java_client, "in-process"], java_in_process_answer)


def go_provider(go_client: Path) -> Provider:
    return Provider("go", [str(go_client), "in-process"], as_flagd_says, rpc=False)


@pytest.fixture(params=["python", "java", "go"])
def provider(request) -> Provider:
    """Every in-process provider; a test parametrizing it (indirect) takes only the ones it names."""
    if request.param == "java":
        return java_provider(request.getfixturevalue("java_client"))
    if request.param == "go":
        return go_provider(request.getfixturevalue("go_client"))
    return PYTHON


# A session's first Go test builds the client (go_client.py).
BUILDS_GO = pytest.mark.timeout(GO_BUILD_TIMEOUT + 120)


def assert_served_alike(report: dict[str, Any], checks: list[dict[str, Any]], provider: Provider) -> int:
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
            assert local == provider.expected(each, remote), (each, result)
            served += local["errorCode"] is None
    return served


@BUILDS_GO
def test_the_in_process_provider_answers_the_conformance_vectors_as_the_sidecar(start, tmp_path, provider):
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
        provider=provider,
    )

    assert report["ready"], report
    assert report["rpcReady"], report
    context = report["syncContext"]["$flagSidecar"]
    assert context["flagSet"] == "default"
    assert set(context["leftOut"]) == set(CONFORMANCE_LEFT_OUT)
    for key, why in CONFORMANCE_LEFT_OUT.items():
        assert why in context["leftOut"][key]
    served = assert_served_alike(report, checks, provider)
    # static-string, and (but for Java's FLAG_NOT_FOUND) disabled-bool and disabled-no-default
    assert served >= (1 if provider.name == "java" else 3)
    unknown = next(r for c, r in zip(checks, report["results"], strict=True) if c["flag"] == "no-such-flag")
    assert unknown["inProcess"]["errorCode"] == unknown["rpc"]["errorCode"] == "FLAG_NOT_FOUND"
    # The edit reached the in-process provider, which answers as the sidecar does.
    assert report["changed"], report
    assert report["afterChange"]
    for result in report["afterChange"]:
        assert result["inProcess"] == provider.expected({}, result["rpc"])
        assert result["inProcess"]["value"] == "#d62728"


@BUILDS_GO
def test_every_translated_operator_answers_every_context_as_the_sidecar(start, provider):
    run = start(document())
    checks = []
    for flag in document()["flags"]:
        kinds = ["integer", "float"] if flag_type(flag) in ("integer", "float") else [flag_type(flag)]
        for targeting_key, value in CONTEXTS:
            for kind in kinds:
                checks.append(
                    check(flag["key"], kind, targeting_key, {} if value is MISSING else {"plan": value})
                )

    report = run.run(checks, provider=provider)

    assert report["ready"], report
    assert report["rpcReady"], report
    assert report["syncContext"]["$flagSidecar"]["leftOut"] == {}
    served = assert_served_alike(report, checks, provider)
    if provider.name == "java":  # an error (with the caller's default) where no default variant is set
        results = zip(checks, report["results"], strict=True)
        assert served == sum(provider.expected(c, r["rpc"])["errorCode"] is None for c, r in results)
        assert served > len(checks) / 2
    else:
        assert served == len(checks)


@BUILDS_GO
def test_a_selector_for_another_flag_set_is_refused_and_flagds_form_is_understood(start, provider):
    run = start(yaml.safe_load((CONFORMANCE / "flags.yaml").read_text()))
    one = [check("static-string", "string", "u1", {})]
    by_id = run.run(one, "--selector", "flagSetId=default", provider=provider)
    assert by_id["results"][0]["inProcess"]["value"] == "#1f77b4"
    flagds = run.run(one, "--selector", "flag-set=default", provider=provider)
    assert flagds["results"][0]["inProcess"]["variant"] == "blue"
    refused = run.run(one, "--selector", "flag-set=other", provider=provider)
    assert not refused["ready"]  # SyncFlags answered NOT_FOUND


def test_the_sidecar_logs_what_it_left_out(start):
    run = start(yaml.safe_load((CONFORMANCE / "flags.yaml").read_text()))
    run.run([check("static-string", "string", "u1", {})])
    eventually(lambda: "left out for in-process providers" in run.process.log, timeout=5)
    assert "split-user: percentage split" in run.process.log


@BUILDS_GO
def test_context_values_reach_the_in_process_provider_and_header_mapped_properties_are_left_out(
    start, provider
):
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

    report = run.run(checks, provider=provider)

    assert report["ready"], report
    assert report["syncContext"]["region"] == "eu"
    assert "--context-from-header" in report["syncContext"]["$flagSidecar"]["leftOut"]["by-tenant"]
    assert assert_served_alike(report, checks, provider) == 2
    assert [r["inProcess"]["variant"] for r in report["results"][:2]] == ["yes", "yes"]


# Splits and the Java provider. Its in-process evaluator (flagd 0.11.15,
# resolver/process/targeting/Fractional.java) hashes the UTF-8 bytes of the bucketing string with
# murmur3 (v2's input) but buckets by abs(signed hash) / Integer.MAX_VALUE * 100 in float, not by
# v2's (hash * total) >> 32: no fractional rule gives every user our bucket, so splits stay left
# out for it. The switch: JAVA_SPLITS_SERVED = True once the translation serves it splits.
JAVA_SPLITS_SERVED = False
SPLIT_FLAGS = ("split-user", "split-account")
SPLIT_USERS = [f"user-{n}" for n in range(200)] + ["", "ünïcødé-用户"]


def test_the_java_in_process_provider_on_split_users(start, java_client):
    flags = yaml.safe_load((CONFORMANCE / "flags.yaml").read_text())
    run = start({"flags": [f for f in flags["flags"] if f["key"] in SPLIT_FLAGS]})
    checks = [check("split-user", "string", user, {}) for user in SPLIT_USERS]
    checks += [check("split-account", "boolean", "u1", {"accountId": user}) for user in SPLIT_USERS]

    report = run.run(checks, provider=java_provider(java_client))

    assert report["ready"], report
    left_out = report["syncContext"]["$flagSidecar"]["leftOut"]
    assert {key: key not in left_out for key in SPLIT_FLAGS} == dict.fromkeys(SPLIT_FLAGS, JAVA_SPLITS_SERVED)
    served = assert_served_alike(report, checks, java_provider(java_client))
    assert served == (len(checks) if JAVA_SPLITS_SERVED else 0)


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def java_fractional(text: str, weights: list[tuple[str, int]]) -> str:
    """flagd 0.11.15's Fractional.distributeValue, float arithmetic included."""
    signed = mmh3.hash(text.encode(), 0, signed=True)
    magnitude = signed if signed == -(2**31) else abs(signed)  # Math.abs(Integer.MIN_VALUE) < 0
    position = _float32(_float32(_float32(magnitude) / _float32(2**31 - 1)) * 100)
    total = sum(weight for _, weight in weights)
    cumulative = 0.0
    for variant, weight in weights:
        cumulative = _float32(
            cumulative + (_float32(_float32(weight * 100) / _float32(total)) if weight else 0)
        )
        if position < cumulative:
            return variant
    raise AssertionError("no bucket")  # Fractional.java throws here too


def test_the_java_providers_fractional_is_not_the_sidecars_split(java_client, tmp_path):
    """flagd's v2 form of split-user, `{"cat": ["split-user:", {"var": "targetingKey"}]}` with
    weights of percentage x 100, evaluated by the Java provider itself (offline, from a file): it
    follows java_fractional exactly, and puts users elsewhere than the sidecar does."""
    flags = yaml.safe_load((CONFORMANCE / "flags.yaml").read_text())
    weights = [("a", 3333), ("b", 3333), ("c", 3334)]
    fractional = [{"cat": ["split-user:", {"var": "targetingKey"}]}, *map(list, weights)]
    variants = {"a": "a", "b": "b", "c": "c"}
    document = {
        "state": "ENABLED",
        "variants": variants,
        "defaultVariant": "a",
        "targeting": {"fractional": fractional},
    }
    flagd_file = tmp_path / "flagd.json"
    flagd_file.write_text(json.dumps({"flags": {"split-user": document}}))
    users = [user for user in SPLIT_USERS if user]  # "" is no targeting key for flagd
    checks_file = tmp_path / "checks.json"
    checks_file.write_text(json.dumps([check("split-user", "string", user, {}) for user in users]))

    completed = subprocess.run(
        [*java_client, "offline", "--flags", str(flagd_file), "--checks", str(checks_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)

    assert report["ready"], report
    java = [result["variant"] for result in report["results"]]
    assert {result["reason"] for result in report["results"]} == {"TARGETING_MATCH"}
    assert java == [java_fractional(f"split-user:{user}", weights) for user in users]
    flag = compile_flag_set(flags).flags["split-user"]
    sidecar = [evaluate(flag, build_context(user, {})).variant for user in users]
    differing = sum(a != b for a, b in zip(java, sidecar, strict=True))
    assert differing > len(users) / 4, f"{differing} of {len(users)} users differ: serve Java splits?"


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


@pytest.mark.parametrize("provider", ["go"], indirect=True)
@BUILDS_GO
def test_a_fractional_v2_provider_gets_splits_and_lands_in_the_sidecars_buckets(start, provider):
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

    report = run.run(checks, "--provider-id", "checkout,fractional=v2", provider=provider)

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
        assert local == provider.expected(each, remote), (each, result)
        variants.add(remote["variant"])
    assert variants == {"a", "b", "c", "rest"}
    # Without fractional=v2 in its provider_id, a provider gets no splits (the Python one hashes as v3).
    plain = run.run(checks[:1], provider=provider)
    assert set(plain["syncContext"]["$flagSidecar"]["leftOut"]) == {flag["key"] for flag in flags["flags"]}


@pytest.mark.parametrize("provider", ["go"], indirect=True)
@BUILDS_GO
def test_a_fractional_v2_provider_answers_the_conformance_splits_as_the_sidecar(start, provider):
    """The shared vectors' splits (a user id, a string account, whole numbers and booleans as
    bucket values) reach a provider saying fractional=v2 and land where the sidecar puts them."""
    flags = yaml.safe_load((CONFORMANCE / "flags.yaml").read_text())
    run = start(flags)
    checks = conformance_checks(flags)

    report = run.run(checks, "--provider-id", "fractional=v2", provider=provider)

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
            assert local == provider.expected(each, remote), each
            splits_served += remote["reason"] == "SPLIT"
    assert splits_served >= 10
