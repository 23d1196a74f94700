"""Generate the Python code for every .proto under proto/ into OUT_DIR (default: the repo root).

The generated import package mirrors the proto package (`flagsidecar.v1`), because protoc writes
absolute imports from proto paths. tests/test_generated_code.py runs this into a temporary
directory and compares it with what is committed.

flagd.evaluation.v1 and v2 also get Connect stubs (`evaluation_connect.py`, from connectrpc's own plugin,
protoc-gen-connectrpc, over Google's protobuf classes): `--flagd-connect-listen` serves them.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
# The services served over the Connect protocol too (sidecar/server/flagd/connect.py).
CONNECT_PROTOS = ("flagd/evaluation/v1/evaluation.proto", "flagd/evaluation/v2/evaluation.proto")


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto file; return what was written."""
    well_known = str(resources.files("grpc_tools") / "_proto")
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {files}")
    plugin = Path(sys.executable).parent / "protoc-gen-connectrpc"  # the dev extra installs it
    connect_args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-connectrpc={plugin}",
        f"--connectrpc_out={out_dir}",
        "--connectrpc_opt=protobuf=google",
        *CONNECT_PROTOS,
    ]
    if protoc.main(connect_args) != 0:
        raise SystemExit(f"protoc-gen-connectrpc failed on {CONNECT_PROTOS}")
    written: list[Path] = []
    for rel in files:
        package_dir = out_dir / Path(rel).parent
        # protoc writes modules only; the packages need an __init__.py at every level.
        for parent in [package_dir, *package_dir.relative_to(out_dir).parents]:
            init = out_dir / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("")
        stem = Path(rel).stem
        written += [package_dir / f"{stem}_pb2{suffix}" for suffix in (".py", ".pyi", "_grpc.py")]
        if rel in CONNECT_PROTOS:
            written.append(package_dir / f"{stem}_connect.py")
    return written


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT)
