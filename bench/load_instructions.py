"""Instructions a flag set's load executes, this tree against another revision's: a measure that a
busy machine does not move (wall and CPU time on a shared machine spread too widely to see a few
per cent).

    python -m bench.load_instructions --before REV [--flags N] [--distinct]

valgrind's callgrind counts the instructions of a fresh interpreter that imports `sidecar.cli` and
loads the bench's flag file of N flags (JSON) once, minus the same interpreter importing alone; the
tree's bytecode is compiled first, as bench.run does (`compile_bytecode`). Needs valgrind; takes a
minute or two per tree. Not part of `make bench`: a number for bench/notes.md when a change to the
load path must be weighed and the machine is not quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import flagsets
from bench.run import REPO, before_tree, compile_bytecode

_LOAD = """
import sys
sys.path.insert(0, sys.argv[1])
import sidecar.cli
from sidecar.store.loading import load_flag_file
for _ in range(int(sys.argv[3])):
    load_flag_file(sys.argv[2])
"""


def instructions(root: Path, flags_file: Path, loads: int) -> int:
    """callgrind's instruction count of one interpreter importing from `root` and loading `loads` times."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dicts, the same probes, run after run
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            _LOAD,
            str(root),
            str(flags_file),
            str(loads),
        ],
        cwd=tempfile.gettempdir(),  # not the tree: its sidecar/ must come from `root`
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def load_instructions(root: Path, flags_file: Path) -> int:
    return instructions(root, flags_file, 1) - instructions(root, flags_file, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the revision to compare with (e.g. HEAD)")
    parser.add_argument("--flags", type=int, default=10_000, help="flags in the file (default 10,000)")
    parser.add_argument("--distinct", action="store_true", help="every flag distinct (no shared parts)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as directory:
        flags_file = Path(directory) / "flags.json"
        flags_file.write_text(json.dumps(flagsets.flag_document(args.flags, distinct=args.distinct)))
        before = before_tree(args.before, Path(directory))
        compile_bytecode(REPO)
        ours, theirs = load_instructions(REPO, flags_file), load_instructions(before, flags_file)
    ratio = ours / theirs
    print(f"{args.flags:,} flags: {ours:,} instructions to load, {theirs:,} at {args.before}: {ratio:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
