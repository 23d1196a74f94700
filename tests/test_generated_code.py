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


def test_the_generated_packages_hold_nothing_else(tmp_path):
    # Generated code lives in its own packages and nothing else does (DESIGN.md): every file there
    # is one protoc writes for a .proto, one of the empty __init__.py files gen_proto adds, or a
    # PEP 561 py.typed marker.
    generated = gen_proto.generate(tmp_path)
    expected = {p.relative_to(tmp_path) for p in generated}
    expected |= {p.relative_to(tmp_path) for p in tmp_path.rglob("__init__.py")}
    roots = {p.parts[0] for p in expected}
    committed = {
        p.relative_to(REPO)
        for root in roots
        for p in (REPO / root).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != "py.typed"
    }
    assert committed <= expected, (
        f"files in the generated packages with no .proto: {sorted(committed - expected)}"
    )
    not_empty = [str(p) for p in committed if p.name == "__init__.py" and (REPO / p).read_bytes()]
    assert not not_empty, f"the generated packages' __init__.py files must be empty: {not_empty}"
