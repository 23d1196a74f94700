"""A fleet on one PostgreSQL through an outage (issue 13): several real sidecar processes follow
one database; PostgreSQL stops: they keep serving from memory and say the source is down (/readyz,
health, metrics, and how old the set is); a write is refused at the admin API, saying why; a
sidecar SIGKILLed meanwhile and started again serves the last-known-good set; PostgreSQL comes
back: every one of them catches up by itself and follows writes again."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from flagsidecar.v1 import admin_pb2
from tests import postgres_server
from tests.admin.conftest import AUTH, AdminSidecar, evaluate, new_flag
from tests.conftest import eventually
from tests.serve_process import ServeProcess, SidecarProbes

postgres_server.require()
pytestmark = pytest.mark.skipif(not postgres_server.available(), reason="no pg_ctl (PostgreSQL) found")


class FleetSidecar(AdminSidecar, SidecarProbes):
    """A sidecar process on the database, with its management endpoints and state directory."""

    def __init__(self, uri: str, state: Path, *extra: str) -> None:
        super().__init__(
            ServeProcess(None, "--source", uri, "--state-dir", str(state), "--cache-ttl", "1", *extra),
            database=None,  # type: ignore[arg-type]
        )
        self.state = state
        self.address = self.process.address()
        match = eventually(lambda: re.search(r"management endpoints on (http://\S+)", self.process.log))
        self.management = match.group(1)

    def version(self) -> int | None:
        answer = evaluate(self.evaluation(), "new-checkout")
        return None if answer is None else answer.flag_version


def _down(sidecar: FleetSidecar) -> bool:
    status, body = sidecar.get("/readyz")
    return status == 200 and "stale: " in body and sidecar.metric("flag_sidecar_source_up") == 0.0


def _current(sidecar: FleetSidecar) -> bool:
    return (
        sidecar.get("/readyz") == (200, "ready\n")
        and sidecar.metric("flag_sidecar_source_up") == 1.0
        and sidecar.metric("flag_sidecar_flag_set_last_known_good") == 0.0
    )


def test_a_fleet_on_postgresql_rides_out_an_outage(tmp_path, token_file):
    with postgres_server.postgres_server() as server:
        uri = postgres_server.fresh_database(server)
        admin_options = ("--admin-listen", "127.0.0.1:0", "--admin-token-file", str(token_file))
        fleet = [FleetSidecar(uri, tmp_path / "state-0", *admin_options)]
        fleet += [FleetSidecar(uri, tmp_path / f"state-{n}") for n in (1, 2)]
        try:
            admin = fleet[0].admin()
            admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH)
            for sidecar in fleet:
                eventually(lambda sidecar=sidecar: sidecar.version() == 1, timeout=10)
                assert _current(sidecar)
                assert sidecar.metric("flag_sidecar_flag_cache_entries") == 1.0

            server.stop()
            for sidecar in fleet:
                eventually(lambda sidecar=sidecar: _down(sidecar), timeout=20)
                assert sidecar.version() == 1  # served from memory
                assert sidecar.health("flag-source") == "NOT_SERVING"
                assert sidecar.health("") == "SERVING"
                body = sidecar.get("/readyz")[1]
                assert "cannot read postgresql://" in body
                assert re.search(r"the served set was last current \d+s ago", body)
            # The set's age grows while the source is down.
            age = fleet[1].metric("flag_sidecar_flag_set_age_seconds")
            assert age is not None
            eventually(lambda: fleet[1].metric("flag_sidecar_flag_set_age_seconds") > age + 1, timeout=10)
            # Its revalidations past --cache-ttl fail meanwhile, and the old entries keep serving.
            failed = 'flag_sidecar_flag_cache_revalidations_total{result="failed"}'
            eventually(lambda: (fleet[1].metric(failed) or 0) > 0, timeout=15)

            # A write while the database is down is refused, saying so.
            with pytest.raises(grpc.RpcError) as refused:
                admin.UpdateFlag(
                    admin_pb2.UpdateFlagRequest(
                        key="new-checkout", expected_version=1, flag=admin_pb2.UpdateFlag(enabled=False)
                    ),
                    metadata=AUTH,
                    timeout=30,
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "the flag database is unavailable" in refused.value.details()

            # SIGKILL one during the outage; started again, it serves the last-known-good set.
            fleet[2].close()
            fleet[2] = FleetSidecar(uri, tmp_path / "state-2")
            assert fleet[2].version() == 1
            assert fleet[2].metric("flag_sidecar_flag_set_last_known_good") == 1.0
            assert "serving the last known good copy from --state-dir" in fleet[2].get("/readyz")[1]
            assert fleet[2].health("flag-source") == "NOT_SERVING"

            server.start()
            for sidecar in fleet:  # each catches up by itself
                eventually(lambda sidecar=sidecar: _current(sidecar), timeout=30)
            admin.UpdateFlag(
                admin_pb2.UpdateFlagRequest(
                    key="new-checkout", expected_version=1, flag=admin_pb2.UpdateFlag(enabled=False)
                ),
                metadata=AUTH,
                timeout=30,
            )
            for sidecar in fleet:
                eventually(lambda sidecar=sidecar: sidecar.version() == 2, timeout=10)
                assert sidecar.health("flag-source") == "SERVING"
        finally:
            for sidecar in fleet:
                sidecar.close()
