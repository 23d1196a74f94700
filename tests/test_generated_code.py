"""The committed protobuf code is exactly what proto/ generates (it is never edited by hand)."""

import subprocess
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


GO_GENERATED = Path("clients/go/gen")


def test_committed_go_code_matches_proto(tmp_path):
    # buf generate with buf.gen.yaml (its local, pinned plugins) into a scratch base directory.
    plugins = [REPO / ".tools/bin" / name for name in ("protoc-gen-go", "protoc-gen-go-grpc")]
    missing = [str(p.relative_to(REPO)) for p in plugins if not p.exists()]
    assert not missing, f"{missing} not built: run `make go-plugins` (make test does)"
    buf = Path(sys.executable).parent / "buf"
    subprocess.run([str(buf), "generate", "--output", str(tmp_path)], cwd=REPO, check=True, timeout=120)

    def files(root: Path) -> dict[Path, bytes]:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    generated, committed = files(tmp_path / GO_GENERATED), files(REPO / GO_GENERATED)
    assert generated, "buf generated no Go code"
    every = generated.keys() | committed.keys()
    stale = sorted(str(p) for p in every if generated.get(p) != committed.get(p))
    assert not stale, f"clients/go/gen is out of date with proto/, run `make proto`: {stale}"
