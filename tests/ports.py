"""Free loopback ports for the processes a test must name a port to (a broker, PostgreSQL, a restart).

A port probed with bind(0) comes from the kernel's ephemeral range, which every other bind(0) and
outgoing connection draws from too: between the probe and the real bind, another test's
`--listen 127.0.0.1:0` (in this process or in another pytest-xdist worker) can take it. So the
ports handed out here lie below that range, where nothing binds unless asked to, and each worker
has a block of its own: two workers never hand out the same port, and within a worker a port is
handed out once. A port still taken by something outside the suite is skipped (the bind test).

Where the code under test can bind port 0 and report it, that stays the better way.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import threading

# Below Linux's default ephemeral range (32768-60999, /proc/sys/net/ipv4/ip_local_port_range).
_FIRST = 20_000
_BLOCK = 1_500  # ports a worker may hand out: far more than a run takes


def _worker_index() -> int:
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) if match else 0


_start = _FIRST + _worker_index() % 8 * _BLOCK  # 8 blocks end at 32,000
_candidates = itertools.cycle(range(_start, _start + _BLOCK))
_lock = threading.Lock()


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port that nothing is bound to, not handed out before by this worker."""
    with _lock:
        for _ in range(_BLOCK):
            port = next(_candidates)
            if _bindable(port):
                return port
    raise RuntimeError(f"no free loopback port in {_start}-{_start + _BLOCK - 1}")


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (see free_port)."""
    return [free_port() for _ in range(count)]
