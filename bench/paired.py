"""Server CPU per Evaluate call of two or three sidecar servers, measured back to back, many rounds.

    .venv/bin/python -m bench.paired [--before REV] [--interceptor] [--rounds 20] [--calls 3000]

bench.run pairs each server with the empty RPC, and on a shared machine the spread of those ratios
(often ±20% between repeats) hides a difference of a few per cent between two versions of the
sidecar. This measures the versions against each other instead: in every round each server (now;
the sidecar of --before; with --interceptor, now with its timing and status mapping in a
grpc.ServerInterceptor, bench/servers.py) serves the same Evaluate load in turn, in a rotating
order, and the round's ratio other/now is one sample. Servers on CPU 0, load generators on CPU 1.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import flagsets
from .rpc import REPO, LoadGenerator, pin_to_cpus, server_process
from .run import before_tree, progress

CASES = ("static", "rules", "split")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="", help="revision whose sidecar/ is measured as 'before'")
    parser.add_argument("--interceptor", action="store_true")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        flags = flagsets.write_flag_file(Path(directory), 100)
        roots = {"now": None} | ({"before": before_tree(args.before, Path(directory))} if args.before else {})

        def start(root: Path | None, env: dict[str, str] | None = None) -> LoadGenerator:
            server = stack.enter_context(server_process("sidecar", flags, env, root or REPO))
            load = stack.enter_context(LoadGenerator(server))
            pin_to_cpus(server.pid, {0})
            pin_to_cpus(load.pid, {1})
            return load

        servers = {name: start(root) for name, root in roots.items()}
        if args.interceptor:
            servers["interceptor"] = start(None, {"BENCH_INTERCEPTOR": "1"})
        cpu: dict[tuple[str, str], list[float]] = {(s, c): [] for s in servers for c in CASES}
        names = list(servers)
        for round_ in range(args.rounds):
            progress(f"round {round_ + 1}/{args.rounds}")
            for case in CASES:
                request = flagsets.evaluate_request(case)
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    measured = servers[name].measure(
                        flagsets.EVALUATE_METHOD, request, args.calls, args.concurrency
                    )
                    cpu[(name, case)].append(measured.cpu_us)
    header = [f"{name} µs" for name in names] + [f"{name}/now" for name in names[1:]]
    print(f"| Evaluate case | {' | '.join(header)} |")
    print(f"|---|{'---|' * (2 * len(names) - 1)}")
    for case in CASES:
        now = cpu[("now", case)]
        cells = [f"{statistics.median(cpu[(n, case)]):.0f}" for n in names]
        for name in names[1:]:
            ratios = sorted(other / mine for other, mine in zip(cpu[(name, case)], now, strict=True))
            quartiles = statistics.quantiles(ratios, n=4)
            cells.append(f"**{statistics.median(ratios):.3f}** ({quartiles[0]:.3f} to {quartiles[2]:.3f})")
        print(f"| {case} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
