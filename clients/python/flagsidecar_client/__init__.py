"""flag-sidecar's in-process client: follow a control plane's sync stream, evaluate with the
sidecar's own engine in this process, report the evaluations to a sidecar's EventService.

    from flagsidecar_client import FlagSidecarClient

    with FlagSidecarClient("control-plane:8015", events_target="localhost:50051") as flags:
        if flags.boolean("new-checkout", False, "user-42", {"plan": "pro"}):
            ...

docs/clients/python.md describes it; `flagsidecar_client.provider` is its OpenFeature provider.
"""

from sidecar.engine import InvalidContextError

from .client import FlagSidecarClient
from .evaluation import ErrorCode, Evaluation, Reason, User

__all__ = ["ErrorCode", "Evaluation", "FlagSidecarClient", "InvalidContextError", "Reason", "User"]
