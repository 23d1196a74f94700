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


# buf.gen.yaml's output directories and the local plugins that write them: Go's built by
# `make go-plugins`, ts-proto installed by `npm ci` in clients/typescript (`make test` does both).
BUF_GENERATED = {
    Path("clients/go/gen"): (
        "make go-plugins",
        [".tools/bin/protoc-gen-go", ".tools/bin/protoc-gen-go-grpc"],
    ),
    Path("clients/typescript/src/gen"): (
        "make clients/typescript/node_modules/.installed",
        ["clients/typescript/node_modules/.bin/protoc-gen-ts_proto"],
    ),
}


def test_committed_buf_generated_code_matches_proto(tmp_path):
    # buf generate with buf.gen.yaml (its local, pinned plugins) into a scratch base directory.
    missing = [
        f"{plugin} (run `{how}`)"
        for how, plugins in BUF_GENERATED.values()
        for plugin in plugins
        if not (REPO / plugin).exists()
    ]
    assert not missing, f"buf.gen.yaml's plugins are not installed: {missing}"
    buf = Path(sys.executable).parent / "buf"
    subprocess.run([str(buf), "generate", "--output", str(tmp_path)], cwd=REPO, check=True, timeout=120)

    def files(root: Path) -> dict[Path, bytes]:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    for out in BUF_GENERATED:
        generated, committed = files(tmp_path / out), files(REPO / out)
        assert generated, f"buf generated nothing into {out}"
        every = generated.keys() | committed.keys()
        stale = sorted(str(p) for p in every if generated.get(p) != committed.get(p))
        assert not stale, f"{out} is out of date with proto/, run `make proto`: {stale}"
