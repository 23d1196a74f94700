"""The flag-sidecar command, run as a real process: serve, signals, validate."""

import json
import signal
import socket
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from tests.conftest import eventually
from tests.serve_process import run_cli

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

BROKEN_FLAGS = """\
flags:
  - key: checkout
    enabled: true
    variants:
      - {key: on, value: true}
      - {key: "off", value: false}
    defaultVariantWhenOn: "off"
    rules:
      - id: r1
        constraints:
          - {property: email, operation: MATCHES_REGEX, values: ["(unclosed"]}
        distributions:
          - {variant: "off", percentage: 60}
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_gracefully_on_signal(serve, stop_signal):
    sidecar = serve("--shutdown-grace", "1")
    with grpc.insecure_channel(sidecar.address()) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        eventually(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING)
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        answer = stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="banner-color"), timeout=5)
        assert answer.evaluation.variant == "blue"

        # An open Watch stream is an in-flight call: it must see NOT_SERVING before the server goes.
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=20)
        assert next(watch).status == SERVING
        began = time.monotonic()
        sidecar.process.send_signal(stop_signal)
        assert next(watch).status == NOT_SERVING
        assert sidecar.process.wait(timeout=15) == 0, sidecar.log
        # The stream outlived the 1 s grace period, so shutdown waited for it, then cut it.
        assert 0.5 < time.monotonic() - began < 10
    sidecar.stop()
    assert f"received {stop_signal.name}" in sidecar.log
    assert "stopped" in sidecar.lines[-1]


def test_serve_on_a_broken_file_lists_every_problem_and_exits_1(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_FLAGS)
    result = run_cli("serve", "--flags", str(broken), "--listen", "127.0.0.1:0")
    assert result.returncode == 1
    assert "variant key must be a string" in result.stderr
    assert "invalid regular expression" in result.stderr
    assert "percentages sum to 60" in result.stderr
    assert "not serving" in result.stderr
    assert "listening" not in result.stderr


def json_lines(stderr: str) -> list[dict]:
    """Every line of a JSON-format log; fails on a line that is not a JSON object."""
    entries = []
    for line in stderr.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a plain-text line in the JSON log: {line[:200]!r}")
    return entries


def test_serve_on_a_broken_file_logs_the_problems_as_one_json_record(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_FLAGS)
    result = run_cli("serve", "--flags", str(broken), "--listen", "127.0.0.1:0")
    assert result.returncode == 1
    (rejected,) = [entry for entry in json_lines(result.stderr) if entry.get("event") == "flags_rejected"]
    assert rejected["level"] == "error"
    assert rejected["message"].startswith(f"not serving: {broken} has 3 problems")
    assert len(rejected["problems"]) == 3
    assert any("percentages sum to 60" in problem for problem in rejected["problems"])


def test_a_busy_port_is_one_json_line_naming_it(sample_flag_file):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--flags", str(sample_flag_file), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    entries = json_lines(result.stderr)  # grpcio's own add_port.cc line would not be JSON
    assert entries[-1]["message"] == f"not serving: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_serve_without_flags_is_a_usage_error():
    result = run_cli("serve")
    assert result.returncode == 2
    assert "flags is required: pass --flags PATH or set FLAG_SIDECAR_FLAGS" in result.stderr


def test_an_unknown_serve_option_prints_the_serve_usage_and_a_suggestion():
    result = run_cli("serve", "--flags", "flags.yaml", "--cache-tl", "3", "--lisen=127.0.0.1:0")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: flag-sidecar serve ")
    assert "[--cache-ttl SECONDS]" in result.stderr  # the subcommand's options, not COMMAND ...
    assert (
        "flag-sidecar serve: error: unrecognized arguments: --cache-tl (did you mean --cache-ttl?) 3 "
        "--lisen=127.0.0.1:0 (did you mean --listen?)"
    ) in result.stderr


def test_an_unknown_config_option_names_the_config_command():
    result = run_cli("config", "--prnt")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: flag-sidecar config ")
    assert "unrecognized arguments: --prnt (did you mean --print?)" in result.stderr


def test_version_prints_the_package_version():
    from importlib import metadata

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"flag-sidecar {metadata.version('flag-sidecar')}"


def test_validate_a_good_file(sample_flag_file):
    result = run_cli("validate", str(sample_flag_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"OK: {sample_flag_file}: 5 flags, 1 segment"


def test_validate_a_broken_file_prints_one_problem_per_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_FLAGS)
    result = run_cli("validate", str(broken))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{broken}, flag 'checkout'") for line in lines)
    assert "3 problems" in result.stderr


def test_validate_a_missing_file(tmp_path):
    result = run_cli("validate", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr


# YAML that JSON cannot say as written: anchors, a merge key, YAML 1.1 scalars (0x1F, 1.5e+3, 1_000).
CONVERTED_FLAGS = """\
segments:
  - key: staff
    rules:
      - constraints: [{property: email, operation: ENDS_WITH, values: ["@example.com"]}]
flags:
  - &base
    key: limit
    version: 3
    enabled: true
    variants:
      - {key: low, value: 0x1F}
      - {key: mid, value: 1.5e+3}
      - {key: high, value: 1_000}
    defaultVariantWhenOn: low
    rules:
      - id: staff
        constraints: [{operation: IS_IN_SEGMENT, values: [staff]}]
        distributions: [{variant: high, percentage: 100}]
  - <<: *base
    key: limit-copy
    defaultVariantWhenOn: mid
"""


def test_convert_writes_a_yaml_file_as_json_that_loads_to_the_same_flags(tmp_path):
    from sidecar.engine import flag_set_document
    from sidecar.store import load_flag_file

    source = tmp_path / "flags.yaml"
    source.write_text(CONVERTED_FLAGS)
    target = tmp_path / "flags.json"
    result = run_cli("flags", "convert", str(source), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert f"wrote 2 flags and 1 segment of {source} to {target}" in result.stderr
    written = json.loads(target.read_text())
    assert [flag["key"] for flag in written["flags"]] == ["limit", "limit-copy"]
    assert [variant["value"] for variant in written["flags"][1]["variants"]] == [31, 1500.0, 1000]
    assert [flag["version"] for flag in written["flags"]] == [3, 3]  # written in the file: kept
    assert flag_set_document(load_flag_file(target).definitions) == flag_set_document(
        load_flag_file(source).definitions
    )

    # And back: --format yaml to stdout, read as the same set again.
    back = run_cli("flags", "convert", str(target), "--format", "yaml")
    assert back.returncode == 0, back.stderr
    again = tmp_path / "again.yaml"
    again.write_text(back.stdout)
    assert flag_set_document(load_flag_file(again).definitions) == written


def test_convert_picks_the_format_by_the_name_as_a_file_source_reads_it(tmp_path):
    from sidecar.store import load_flag_file

    source = tmp_path / "flags.yaml"
    source.write_text(CONVERTED_FLAGS)
    shouted = tmp_path / "FLAGS.JSON"
    assert run_cli("flags", "convert", str(source), "-o", str(shouted)).returncode == 0
    assert json.loads(shouted.read_text())["segments"][0]["key"] == "staff"
    assert len(load_flag_file(shouted).flags) == 2


def test_convert_compact_writes_one_line_of_the_same_set_and_refuses_a_yaml_target(tmp_path):
    source = tmp_path / "flags.yaml"
    source.write_text(CONVERTED_FLAGS)
    indented, compact = tmp_path / "indented.json", tmp_path / "compact.json"
    assert run_cli("flags", "convert", str(source), "-o", str(indented)).returncode == 0
    assert run_cli("flags", "convert", str(source), "-o", str(compact), "--compact").returncode == 0
    text = compact.read_text()
    assert text.count("\n") == 1
    assert ", " not in text
    assert '": ' not in text
    assert json.loads(text) == json.loads(indented.read_text())
    assert len(text) < len(indented.read_text()) / 2
    # To stdout, --compact alone says JSON.
    assert json.loads(run_cli("flags", "convert", str(source), "--compact").stdout) == json.loads(text)

    # A target that would be read as YAML: a usage error, nothing written.
    for target in (["-o", str(tmp_path / "flags.yaml")], ["--format", "yaml"]):
        result = run_cli("flags", "convert", str(source), "--compact", *target)
        assert result.returncode == 2
        assert "--compact writes JSON" in result.stderr
        assert "write to a .json file" in result.stderr
    assert source.read_text() == CONVERTED_FLAGS  # -o named the source itself: not overwritten


def test_convert_writes_nothing_from_a_broken_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_FLAGS)
    target = tmp_path / "flags.json"
    result = run_cli("flags", "convert", str(broken), "-o", str(target))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 3
    assert f"{broken}: 3 problems, nothing written" in result.stderr
    assert not target.exists()
