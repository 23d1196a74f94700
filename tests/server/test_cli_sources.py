"""serve's flag source (--source URI, --flags PATH) and --state-dir, run as real processes."""

import grpc

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from tests.conftest import write_flag_file
from tests.serve_process import ServeProcess, run_cli


def evaluate(process: ServeProcess, key: str) -> evaluation_pb2.Evaluation:
    with grpc.insecure_channel(process.address()) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        return stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=key), timeout=10).evaluation


def test_serve_reads_a_file_source_uri(sample_flag_file):
    process = ServeProcess(None, "--source", f"file://{sample_flag_file}")
    try:
        assert evaluate(process, "banner-color").variant == "blue"
    finally:
        process.stop()


def test_an_unknown_source_scheme_is_a_usage_error_listing_the_schemes():
    result = run_cli("serve", "--source", "https://flags.internal/flags.yaml")
    assert result.returncode == 2
    assert (
        "invalid source 'https://flags.internal/flags.yaml' (from command-line flag --source): unknown "
        "source scheme 'https' in 'https://flags.internal/flags.yaml'; the sources are file "
        "(file:///path/flags.yaml), grpc (grpc://control-plane:8015?selector=flag-set=default), "
        "grpcs (grpcs://control-plane:8015?ca=/etc/ca.pem)"
    ) in result.stderr


def test_flags_and_source_together_are_a_usage_error(sample_flag_file):
    result = run_cli("serve", "--flags", str(sample_flag_file), "--source", f"file://{sample_flag_file}")
    assert result.returncode == 2
    assert "--flags (from command-line flag --flags) and --source" in result.stderr
    assert "both name the flags: give one" in result.stderr


def flags(default: str) -> dict:
    return {
        "flags": [
            {
                "key": "f",
                "enabled": True,
                "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
                "defaultVariantWhenOn": default,
            }
        ]
    }


def version_after_a_start(flag_file, *extra: str) -> int:
    process = ServeProcess(flag_file, *extra)
    try:
        return evaluate(process, "f").flag_version
    finally:
        process.stop()


def test_flag_versions_survive_a_restart_with_a_state_dir(tmp_path):
    flag_file, state = tmp_path / "flags.yaml", tmp_path / "state"
    write_flag_file(flag_file, flags("off"))
    assert version_after_a_start(flag_file, "--state-dir", str(state)) == 1
    write_flag_file(flag_file, flags("on"))  # changed while no sidecar runs
    assert version_after_a_start(flag_file, "--state-dir", str(state)) == 2
    assert version_after_a_start(flag_file, "--state-dir", str(state)) == 2
    assert version_after_a_start(flag_file) == 1  # without one: counted from 1 by each process
