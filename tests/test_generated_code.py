"""The committed protobuf code is exactly what proto/ generates (it is never edited by hand)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import gen_proto  # noqa: E402


def test_committed_generated_code_matches_proto(tmp_path):
    written = gen_proto.generate(tmp_path)
    assert written, "no .proto files found"
    stale = []
    for generated in written:
        relative = generated.relative_to(tmp_path)
        committed = REPO / relative
        if not committed.exists() or committed.read_bytes() != generated.read_bytes():
            stale.append(str(relative))
    assert not stale, f"generated code is out of date, run `make proto`: {stale}"


def test_no_generated_module_without_a_proto(tmp_path):
    expected = {p.relative_to(tmp_path) for p in gen_proto.generate(tmp_path)}
    roots = {p.parts[0] for p in expected}
    committed = {
        p.relative_to(REPO)
        for root in roots
        for p in (REPO / root).rglob("*_pb2*")
        if p.suffix in (".py", ".pyi")
    }
    assert committed <= expected, f"generated files with no .proto: {sorted(committed - expected)}"
