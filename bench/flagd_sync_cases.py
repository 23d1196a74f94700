"""What flagd's sync protocol costs the control plane per change (sidecar/server/sync/flagd_*.py):

    .venv/bin/python -m bench.flagd_sync_cases [--repeat 7]

flagd's SyncFlags sends the whole translated document on every change, built on the sync
listener's event loop. For the bench flag sets (bench/flagsets.py, distinct flags: a third of them
translate, the rest are splits or use other operations and are left out), the median time to
translate and assemble the document: cold (the first snapshot: every flag translated) and after a
change to one flag (every other flag's translation reused).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from typing import TypeVar

from sidecar.engine import compile_flag_set
from sidecar.server.sync.flagd_translation import Translator

from .flagsets import flag_document

D = TypeVar("D")


def _kept(definition: D | None) -> D:
    assert definition is not None, "compile_flag_set keeps each definition"
    return definition


def measure(count: int, repeat: int) -> dict[str, float | int]:
    flag_set = compile_flag_set(flag_document(count, distinct=True))
    flags = {key: _kept(flag.definition) for key, flag in flag_set.flags.items()}
    segments = {key: _kept(segment.definition) for key, segment in flag_set.segments.items()}
    first = next(iter(flags))
    cold: list[float] = []
    one_change: list[float] = []
    size = 0
    for _ in range(repeat):
        translator = Translator()
        started = time.perf_counter()
        size = len(translator.translate(flags, segments).document_text())
        cold.append(time.perf_counter() - started)
        changed = {**flags, first: dataclasses.replace(flags[first], description="edited")}
        started = time.perf_counter()
        translator.translate(changed, segments).document_text()
        one_change.append(time.perf_counter() - started)
    return {
        "flags": count,
        "document_bytes": size,
        "cold_ms": round(statistics.median(cold) * 1000, 2),
        "one_change_ms": round(statistics.median(one_change) * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for count in (100, 1_000, 10_000):
        print(json.dumps(measure(count, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
