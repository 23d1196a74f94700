"""flagd's generated protobuf modules, imported in one place so that a clash is explained.

The OpenFeature Python flagd provider ships its own copy of these messages, registered under a
different file name; protobuf refuses the same symbols twice in one process, so the provider and
the sidecar's flagd services cannot be imported together (proto/flagd/README.md).
"""

from __future__ import annotations

try:
    from flagd.evaluation.v1 import evaluation_pb2 as evaluation_v1
    from flagd.evaluation.v1 import evaluation_pb2_grpc as evaluation_v1_grpc
    from flagd.evaluation.v2 import evaluation_pb2 as evaluation_v2
    from flagd.evaluation.v2 import evaluation_pb2_grpc as evaluation_v2_grpc
except TypeError as error:  # protobuf: "Couldn't build proto file into descriptor pool: duplicate symbol"
    raise ImportError(
        "cannot load flagd's evaluation protocol: another copy of flagd.evaluation.* is already "
        "registered in this process (typically openfeature-provider-flagd). Run the sidecar and the "
        f"flagd provider in separate processes; see proto/flagd/README.md. ({error})"
    ) from error

__all__ = ["evaluation_v1", "evaluation_v1_grpc", "evaluation_v2", "evaluation_v2_grpc"]
