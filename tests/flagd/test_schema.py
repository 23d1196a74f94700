"""Our flagd protos describe exactly the messages the real flagd providers send and expect.

The OpenFeature Python flagd provider ships flagd's own generated code. It cannot be imported in
this process (its messages clash with ours in protobuf's descriptor pool, proto/flagd/README.md),
so a child process hands over its serialized descriptors and we compare them field by field.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2

from flagd.evaluation.v1 import evaluation_pb2 as v1
from flagd.evaluation.v2 import evaluation_pb2 as v2
from flagd.sync.v1 import sync_pb2

DUMP = """
import sys
from importlib import import_module
module = import_module("openfeature.schemas.protobuf.flagd.{module}_pb2")
sys.stdout.buffer.write(module.DESCRIPTOR.serialized_pb)
"""


def providers_descriptor(module: str) -> descriptor_pb2.FileDescriptorProto:
    completed = subprocess.run(
        [sys.executable, "-c", DUMP.format(module=module)], capture_output=True, check=True, timeout=30
    )
    return descriptor_pb2.FileDescriptorProto.FromString(completed.stdout)


@pytest.mark.parametrize(
    ("module", "ours"),
    [("evaluation.v1.evaluation", v1), ("evaluation.v2.evaluation", v2), ("sync.v1.sync", sync_pb2)],
)
def test_descriptors_match_the_python_providers(module, ours):
    theirs = providers_descriptor(module)
    mine = descriptor_pb2.FileDescriptorProto.FromString(ours.DESCRIPTOR.serialized_pb)
    # Only the file name differs (the provider keeps the file under openfeature/schemas/...).
    assert mine.name == "flagd/" + module.replace(".", "/") + ".proto"
    theirs.name = mine.name
    assert mine == theirs


def test_v2_has_no_resolve_all():
    methods = [m.name for m in v2.DESCRIPTOR.services_by_name["Service"].methods]
    assert methods == [
        "ResolveBoolean",
        "ResolveString",
        "ResolveFloat",
        "ResolveInt",
        "ResolveObject",
        "EventStream",
    ]


def test_the_provider_and_the_sidecar_cannot_share_a_process():
    """Why the provider tests run their clients in child processes; the sidecar explains the clash."""
    code = (
        "import openfeature.schemas.protobuf.flagd.evaluation.v1.evaluation_pb2\n"
        "import sidecar.server.flagd\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert completed.returncode != 0
    assert "Run the sidecar and the flagd provider in separate processes" in completed.stderr
