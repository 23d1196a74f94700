"""Why the sidecar reads YAML from libyaml's events: parse one generated flag file both ways.

Each way runs in a fresh interpreter (so that one's freed memory does not flatter the other) and
reports its parse time, its peak RSS, and its RSS once the flag set is compiled and the document
freed (what a serving sidecar keeps):

- `events`: sidecar.store.parse_flag_document (yaml_values: values built from libyaml's events);
- `csafeloader`: libyaml's own loader, `yaml.load(text, Loader=yaml.CSafeLoader)` (its node graph).

    python -m bench.yaml_loaders --flags 10000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import flagsets

# The collector is paused while loading, as the sidecar's file source does.
_CHILD = """
import gc, json, resource, sys, time
gc.disable()
from pathlib import Path
import yaml
from sidecar.engine import compile_flag_set
from sidecar.store import parse_flag_document
data = Path(sys.argv[2]).read_bytes()
started = time.perf_counter()
if sys.argv[1] == "events":
    document = parse_flag_document(data, "flags.yaml")
else:
    document = yaml.load(data, Loader=yaml.CSafeLoader)
parsed = time.perf_counter() - started
flag_set = compile_flag_set(document, "flags.yaml", consume=True)
del document
gc.enable()
gc.collect()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
status = Path("/proc/self/status").read_text()
rss = int(status.split("VmRSS:")[1].split()[0]) / 1024
print(json.dumps({"parse_s": parsed, "peak_rss_mb": peak, "rss_mb": rss}))
"""

WAYS = ("events", "csafeloader")


def measure(path: Path, way: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, way, str(path)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = flagsets.write_flag_file(Path(directory), args.flags)
        print(
            f"{args.flags:,} flags, {path.stat().st_size / 2**20:.1f} MiB of YAML, medians of {args.repeats}"
        )
        for way in WAYS:
            runs = [measure(path, way) for _ in range(args.repeats)]
            parse = statistics.median(run["parse_s"] for run in runs)
            peak = statistics.median(run["peak_rss_mb"] for run in runs)
            rss = statistics.median(run["rss_mb"] for run in runs)
            print(f"{way:12} parse {parse:.2f} s   peak RSS {peak:.0f} MB   RSS once loaded {rss:.0f} MB")


if __name__ == "__main__":
    main()
