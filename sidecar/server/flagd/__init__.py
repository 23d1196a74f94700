"""flagd compatibility: flagd.evaluation.v1/v2 over the FlagStore, so that existing OpenFeature flagd
providers (RPC resolver) in any language work against the sidecar unchanged.

- `mapping`: reasons, status codes, types and context enrichment (the decisions are listed there);
- `service`: the two servicers and `add_to_server`;
- `stream`: the EventStream fan-out (`EventBroadcaster`), whose `shutdown()` must run before the
  gRPC server stops, and whose open streams are under the server's stream limits
  (sidecar.server.streams) and `DEFAULT_MAX_EVENT_STREAMS`.
"""

from .mapping import ContextRules, parse_context_value, parse_header_mapping
from .service import (
    SERVICE_NAME_V1,
    SERVICE_NAME_V2,
    EvaluationEvents,
    EvaluationServiceV1,
    EvaluationServiceV2,
    FlagdResolver,
    FlagdServices,
    FlagdSettings,
    add_to_server,
)
from .stream import DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_MAX_EVENT_STREAMS, EventBroadcaster

DEFAULT_FLAGD_LISTEN = "127.0.0.1:8013"

__all__ = [
    "DEFAULT_FLAGD_LISTEN",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_MAX_EVENT_STREAMS",
    "SERVICE_NAME_V1",
    "SERVICE_NAME_V2",
    "ContextRules",
    "EvaluationEvents",
    "EvaluationServiceV1",
    "EvaluationServiceV2",
    "EventBroadcaster",
    "FlagdResolver",
    "FlagdServices",
    "FlagdSettings",
    "add_to_server",
    "parse_context_value",
    "parse_header_mapping",
]
