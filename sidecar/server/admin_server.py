"""--admin-listen: the admin API (FlagAdminService, with reflection) on a gRPC server of its own,
never on the evaluation listeners, so that an application's port can never write flags and the
admin port can be firewalled (or TLS'd) on its own. TLS and mutual TLS are the listeners' own
options (--tls-cert, --tls-key, --tls-client-ca); callers are authenticated (admin_access.py).
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from flagsidecar.v1 import admin_pb2_grpc
from sidecar.store.admin import FlagAdmin

from . import admin_service, decoding
from .admin_access import AdminAccess
from .listeners import BoundAddress, TlsFiles, bind, server_credentials
from .metrics import NULL_METRICS, NullMetrics, SidecarMetrics
from .streams import StreamAdmission, StreamLimits

logger = logging.getLogger(__name__)

# Admin writes take turns on the database anyway: a few workers are plenty.
ADMIN_WORKERS = 4
ADMIN_MAX_STREAMS = 4  # reflection streams (grpcurl), under their own limits
ADMIN_MAX_REQUEST_BYTES = 4 * 1024**2


class AdminServer:
    def __init__(
        self,
        admin: FlagAdmin,
        listen: str,
        access: AdminAccess,
        tls: TlsFiles | None = None,
        metrics: SidecarMetrics | NullMetrics = NULL_METRICS,
    ) -> None:
        self.admin = admin
        self._listen = listen
        self._tls = tls
        self.streams = StreamAdmission(StreamLimits(ADMIN_MAX_STREAMS, ADMIN_MAX_STREAMS))
        self._executor = futures.ThreadPoolExecutor(
            max_workers=ADMIN_WORKERS + ADMIN_MAX_STREAMS, thread_name_prefix="grpc-admin"
        )
        self._server = grpc.server(
            self._executor,
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", ADMIN_MAX_REQUEST_BYTES)],
        )
        servicer = admin_service.FlagAdminService(admin, access, metrics)
        decoding.add_servicer(
            admin_pb2_grpc.add_FlagAdminServiceServicer_to_server,
            servicer,
            self._server,
            streams=self.streams,
        )
        decoding.add_servicer(
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server,
            reflection.ReflectionServicer((admin_service.SERVICE_NAME, reflection.SERVICE_NAME)),
            self._server,
            streams=self.streams,
        )
        self.bound: BoundAddress | None = None

    @property
    def address(self) -> str:
        return self.bound.address if self.bound is not None else self._listen

    def start(self) -> None:
        """Bring the database schema up to date, bind, serve. OSError when either cannot be done."""
        self.admin.start()
        credentials = server_credentials(self._tls) if self._tls is not None else None
        try:
            self.bound = bind(self._server, self._listen, credentials)
        except OSError as error:
            where = f"cannot listen on {self._listen}"
            raise OSError(str(error).replace(where, f"{where} (admin)", 1)) from None
        self._server.start()
        mode = "plaintext" if self._tls is None else "mutual TLS" if self._tls.client_ca else "TLS"
        logger.info(
            "admin API on %s (%s; %s, writing %s)",
            self.bound.address,
            mode,
            admin_service.SERVICE_NAME,
            self.admin.database.origin,
            extra={"event": "admin_listening"},
        )

    def stop(self, grace: float = 0.0) -> None:
        if self.bound is not None:
            self._server.stop(grace).wait(grace + 5.0)
            self.streams.close()
            self._executor.shutdown(wait=False)
            self.bound = None
            logger.info("admin listener stopped")
        self.admin.close()
