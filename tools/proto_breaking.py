"""`buf breaking` for proto/ against the contract as it was before its last change (`make lint`).

The baseline is the last commit that changed proto/. When proto/ in the work tree differs from it
(an uncommitted edit), the edit is checked against that commit. When it does not (a clean tree,
as in CI), comparing with that commit would compare proto/ with itself, so the last change is
checked instead: against that commit's parent. The commit that created proto/ has nothing before
it to break.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO = "proto"


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def baseline(repo: Path) -> tuple[str | None, str]:
    """The commit to compare proto/ with (None: nothing to compare), and why that one."""
    last = git(repo, "log", "-1", "--format=%H", "--", PROTO)
    if last.returncode != 0:
        raise SystemExit(f"proto_breaking: not a git work tree ({last.stderr.strip()})")
    last_change = last.stdout.strip()
    if not last_change:
        return None, "no commit has proto/ yet"
    # Tracked files that differ from that commit, or files not tracked yet.
    edited = git(repo, "diff", "--quiet", last_change, "--", PROTO).returncode != 0
    untracked = git(repo, "ls-files", "--others", "--exclude-standard", "--", PROTO).stdout.strip()
    if edited or untracked:
        return last_change, f"the uncommitted proto/ against {last_change[:12]}, its last commit"
    parent = git(repo, "rev-parse", "--verify", "--quiet", f"{last_change}^")
    if parent.returncode == 0:
        against = parent.stdout.strip()
        return against, f"proto/'s last change {last_change[:12]} against its parent {against[:12]}"
    if git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        raise SystemExit(
            f"proto_breaking: the parent of {last_change[:12]} is not in this shallow clone: "
            "fetch more history (git fetch --unshallow)"
        )
    return None, f"proto/ was created by the first commit {last_change[:12]}: nothing before it"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="the git work tree (default: this one)")
    parser.add_argument("--buf", default=str(Path(sys.executable).with_name("buf")), help="the buf binary")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    against, what = baseline(repo)
    if against is None:
        print(f"buf breaking: skipped, {what}")
        return 0
    print(f"buf breaking: {what}")
    # buf reads the commit from the repository itself (a .git directory, or a work tree's .git file).
    command = [args.buf, "breaking", PROTO, "--against", f".git#ref={against},subdir={PROTO}"]
    return subprocess.run(command, cwd=repo, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
