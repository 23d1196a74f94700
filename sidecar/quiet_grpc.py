"""Imported by the command (sidecar.cli) before anything imports grpc: grpcio's C core writes its
own log lines to stderr (`E1201 ... add_port.cc:83] Failed to add port ...`), plain text between
the JSON lines, and reads GRPC_VERBOSITY only when grpc is first imported. Every failure it would
describe also reaches Python as an exception, which the sidecar logs as JSON, so the core is told
to stay quiet unless the operator asks otherwise (GRPC_VERBOSITY=ERROR or DEBUG brings it back).
"""

from __future__ import annotations

import os
import sys

if "grpc" not in sys.modules:  # too late otherwise; an embedding application decides for itself
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
