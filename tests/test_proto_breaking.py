"""tools/proto_breaking.py (`make lint`): `buf breaking` against proto/ before its last change, on a
small git repository made for each test."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import proto_breaking  # noqa: E402

BUF = str(Path(sys.executable).with_name("buf"))
V1 = 'syntax = "proto3";\npackage demo.v1;\nmessage Request {\n  string key = 1;\n}\n'
V2_ADDED_FIELD = V1.replace("  string key = 1;\n", "  string key = 1;\n  bool debug = 2;\n")
V2_CHANGED_TYPE = V1.replace("string key = 1;", "int64 key = 1;")


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "-C", str(repo), *identity, *args], check=True, capture_output=True)


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    commit(
        tmp_path,
        {"proto/buf.yaml": (REPO / "proto" / "buf.yaml").read_text(), "proto/demo/v1/demo.proto": V1},
        "proto",
    )
    return tmp_path


def check(repo: Path, capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = proto_breaking.main(["--repo", str(repo), "--buf", BUF])
    out, err = capfd.readouterr()
    return code, out + err


def test_the_commit_that_creates_proto_has_nothing_to_break(repo, capfd):
    code, output = check(repo, capfd)
    assert code == 0
    assert "skipped" in output
    assert "first commit" in output


def test_a_compatible_last_change_passes(repo, capfd):
    commit(repo, {"proto/demo/v1/demo.proto": V2_ADDED_FIELD}, "add a field")
    code, output = check(repo, capfd)
    assert code == 0, output
    assert "against its parent" in output


def test_a_breaking_last_change_fails_also_when_later_commits_leave_proto_alone(repo, capfd):
    commit(repo, {"proto/demo/v1/demo.proto": V2_CHANGED_TYPE}, "change a field's type")
    code, output = check(repo, capfd)
    assert code != 0
    assert 'changed type from "string" to "int64"' in output

    commit(repo, {"README.md": "docs\n"}, "not proto")
    code, output = check(repo, capfd)
    assert code != 0, "the last proto change is still the one checked"


def test_an_uncommitted_edit_is_checked_against_the_last_commit(repo, capfd):
    commit(repo, {"proto/demo/v1/demo.proto": V2_ADDED_FIELD}, "add a field")
    (repo / "proto/demo/v1/demo.proto").write_text(V1)  # removes the field added just now
    code, output = check(repo, capfd)
    assert code != 0
    assert "uncommitted" in output
    assert "deleted" in output.lower()


def test_a_new_uncommitted_file_counts_as_an_edit(repo, capfd):
    (repo / "proto/demo/v1/other.proto").write_text(V1.replace("Request", "Other"))
    code, output = check(repo, capfd)
    assert code == 0, output
    assert "uncommitted" in output


def test_the_repository_itself_passes(capfd):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    code, output = check(REPO, capfd)
    assert code == 0, output
