"""What `serve` imports before it knows its options: the components that only some sidecars run
(a database, the admin API, the sync listener, the exporters but the one configured, PyYAML) load
when they are used, so that start-up does not pay for them."""

from __future__ import annotations

import subprocess
import sys

# Loaded only by the sidecars that use them.
OPTIONAL = (
    "sidecar.sources.database",
    "sidecar.store.admin",
    "sidecar.store.user_results",
    "sidecar.server.admin_server",
    "sidecar.server.admin_service",
    "sidecar.server.sync",
    "sidecar.events.exporters.kafka",
    "sidecar.events.exporters.webhook",
    "sidecar.events.exporters.otlp",
    "sidecar.events.exporters.file",
    "yaml",
)

PROGRAM = f"""
import sys
from sidecar import cli
from sidecar.app.runtime import Runtime

cli.build_parser()
print(" ".join(name for name in {OPTIONAL!r} if name in sys.modules))
"""


def test_serve_imports_no_optional_component_before_it_is_configured() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_an_exporter_kind_loads_its_module_when_built() -> None:
    program = (
        "import sys\n"
        "from sidecar.events.exporters import FACTORIES\n"
        "from sidecar.events.options import Options, parse_exporter_spec\n"
        "assert 'sidecar.events.exporters.log' not in sys.modules\n"
        "exporter = FACTORIES['log'](Options(parse_exporter_spec('log')))\n"
        "print(type(exporter).__module__)\n"
    )
    built = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert built.stdout.strip() == "sidecar.events.exporters.log"
