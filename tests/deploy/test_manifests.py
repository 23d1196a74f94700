"""The Kubernetes manifests and the Dockerfile agree with the server: ports, probes, args.

Defaults come from the option table (sidecar/app/settings.py) and the args go through the real
command-line parser and settings resolution, so a renamed flag or a moved default breaks this test, not a pod.
The grpc probes are asked of a real health listener, serving the ConfigMap's flags.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sidecar import cli, healthcheck
from sidecar.app import settings as app_settings
from sidecar.options import ENV_PREFIX
from sidecar.server.app import LIVENESS_SERVICE, SidecarServer
from sidecar.server.health_listener import HealthServer
from sidecar.server.management import split_host_port
from sidecar.sources import FileSource
from sidecar.store import FlagStore, load_flag_file
from tests.conftest import eventually

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
SIDECAR = "flag-sidecar"


def default_port(option: str) -> int:
    default = app_settings.option_named(option).default
    address = default[0] if isinstance(default, tuple) else default
    return split_host_port(address)[1]


GRPC_PORT = default_port("listen")
MANAGEMENT_PORT = default_port("management_listen")


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    found = []
    for name in kustomization["resources"]:
        found.extend(d for d in yaml.safe_load_all((KUBERNETES / name).read_text()) if d)
    return found


def one(kind: str) -> dict[str, Any]:
    matches = [d for d in documents() if d["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}"
    return matches[0]


@dataclass
class Pod:
    spec: dict[str, Any]

    @property
    def sidecar(self) -> dict[str, Any]:
        return next(c for c in self.spec["initContainers"] if c["name"] == SIDECAR)

    @property
    def app(self) -> dict[str, Any]:
        return self.spec["containers"][0]

    def port(self, container: dict[str, Any], name_or_number: str | int) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        return next(p["containerPort"] for p in container["ports"] if p["name"] == name_or_number)

    def volume(self, name: str) -> dict[str, Any]:
        return next(v for v in self.spec["volumes"] if v["name"] == name)


@pytest.fixture(scope="module")
def pod() -> Pod:
    return Pod(one("Deployment")["spec"]["template"]["spec"])


@pytest.fixture(scope="module")
def settings(pod: Pod) -> app_settings.Settings:
    """The sidecar's settings, resolved from its args and env exactly as `serve` would."""
    args = cli.build_parser().parse_args(pod.sidecar["args"])
    assert args.command == "serve"
    environ = {e["name"]: e["value"] for e in pod.sidecar.get("env", [])}
    for name in environ:
        assert name.removeprefix(ENV_PREFIX).lower() in app_settings.OPTIONS_BY_NAME, name
    return app_settings.load_settings(args, environ)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_sidecar_is_a_native_sidecar(pod: Pod) -> None:
    assert pod.sidecar["restartPolicy"] == "Always"
    assert SIDECAR not in [c["name"] for c in pod.spec["containers"]]


def test_grpc_port_and_the_apps_address(pod: Pod, settings: app_settings.Settings) -> None:
    assert settings.listen == (f"127.0.0.1:{GRPC_PORT}",)  # loopback: only this pod's app calls it
    assert pod.port(pod.sidecar, "grpc") == GRPC_PORT
    app_env = {e["name"]: e["value"] for e in pod.app["env"]}
    assert app_env["FLAG_SIDECAR_ADDRESS"] == settings.listen[0]


def test_management_port_listens_on_the_pod_ip(pod: Pod, settings: app_settings.Settings) -> None:
    host, port = split_host_port(settings.management_listen)
    assert (host, port) == ("0.0.0.0", MANAGEMENT_PORT)  # Prometheus scrapes the pod IP
    assert pod.port(pod.sidecar, "management") == MANAGEMENT_PORT
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(MANAGEMENT_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_health_port_listens_on_the_pod_ip(pod: Pod, settings: app_settings.Settings) -> None:
    # Off by default: the manifest has to turn it on, or the grpc probes would find no port.
    assert app_settings.option_named("health_listen").default == ""
    assert settings.health_listen, "no --health-listen: the grpc probes would find nothing"
    host, port = split_host_port(settings.health_listen)
    assert host == "0.0.0.0"  # the kubelet probes the pod IP
    assert pod.port(pod.sidecar, "grpc-health") == port
    assert port not in (GRPC_PORT, MANAGEMENT_PORT)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class HealthStages:
    """What a real health listener answered for one service name at each stage of a sidecar's life."""

    starting: int  # the listener is up; no flags loaded, the gRPC server not started
    serving: int  # flags applied, the gRPC server accepting calls
    draining: int  # SIGTERM: shutdown has begun, in-flight calls still running


@pytest.fixture(scope="module")
def health_stages(settings: app_settings.Settings, tmp_path_factory) -> Iterator[dict[str, HealthStages]]:
    """Runs the sidecar's stages once against a real health listener serving the ConfigMap's flags:
    HealthStages for "", "liveness" and every registered service name."""
    assert settings.flags is not None
    flag_file = tmp_path_factory.mktemp("flags") / settings.flags.name
    flag_file.write_text(one("ConfigMap")["data"][settings.flags.name])
    store = FlagStore(FileSource(flag_file))
    server = SidecarServer(store, "127.0.0.1:0")
    health_server = HealthServer(server.health, "127.0.0.1:0")
    health_server.start()
    channel = grpc.insecure_channel(health_server.address)
    names = ("", LIVENESS_SERVICE, *server.service_names)
    stub = health_pb2_grpc.HealthStub(channel)

    def statuses() -> dict[str, int]:
        return {n: stub.Check(health_pb2.HealthCheckRequest(service=n), timeout=5).status for n in names}

    try:
        starting = statuses()
        store.start()
        server.start()
        serving = eventually(lambda: (now := statuses())[""] == SERVING and now)
        server.begin_shutdown()
        draining = statuses()
        yield {name: HealthStages(starting[name], serving[name], draining[name]) for name in names}
    finally:
        channel.close()
        server.stop(grace=0)
        health_server.stop()
        store.close()


@pytest.mark.parametrize(
    ("probe", "service", "expected"),
    [
        ("startupProbe", "", HealthStages(NOT_SERVING, SERVING, NOT_SERVING)),
        ("readinessProbe", "", HealthStages(NOT_SERVING, SERVING, NOT_SERVING)),
        # Never fails while the process answers: a kill mid-drain would cut in-flight calls.
        ("livenessProbe", LIVENESS_SERVICE, HealthStages(SERVING, SERVING, SERVING)),
    ],
)
def test_grpc_probes_ask_the_health_listener(
    pod: Pod,
    settings: app_settings.Settings,
    health_stages,
    probe: str,
    service: str,
    expected: HealthStages,
) -> None:
    spec = pod.sidecar[probe]
    assert set(spec) & {"httpGet", "tcpSocket", "exec"} == set()
    grpc_action = spec["grpc"]
    # A grpc probe's port is a number (Kubernetes takes no port name there): the --health-listen
    # port, declared as the container port grpc-health.
    assert isinstance(grpc_action["port"], int)
    assert grpc_action["port"] == split_host_port(settings.health_listen)[1]
    assert grpc_action["port"] == pod.port(pod.sidecar, "grpc-health")
    assert grpc_action.get("service", "") == service  # unset means "", the overall status
    assert health_stages[service] == expected


def test_every_served_service_name_says_what_the_readiness_probe_sees(health_stages) -> None:
    assert "flagsidecar.v1.EvaluationService" in health_stages
    for name, stages in health_stages.items():
        if name != LIVENESS_SERVICE:
            assert stages == health_stages[""], name


def test_flags_come_from_the_configmap_mounted_as_a_directory(
    pod: Pod, settings: app_settings.Settings, tmp_path: Path
) -> None:
    assert settings.flags is not None
    mount = next(m for m in pod.sidecar["volumeMounts"] if Path(m["mountPath"]) == settings.flags.parent)
    assert "subPath" not in mount  # subPath mounts never receive ConfigMap updates
    assert mount.get("readOnly") is True
    config_map_name = pod.volume(mount["name"])["configMap"]["name"]
    config_map = one("ConfigMap")
    assert config_map["metadata"]["name"] == config_map_name
    # The file named in --flags is a key of the ConfigMap, and a valid flag file.
    text = config_map["data"][settings.flags.name]
    copy = tmp_path / settings.flags.name
    copy.write_text(text)
    flag_set = load_flag_file(copy)
    assert len(flag_set.flags) >= 1
    assert not flag_set.warnings


def test_resources_and_security(pod: Pod, settings: app_settings.Settings) -> None:
    resources = pod.sidecar["resources"]
    for kind in ("cpu", "memory"):
        assert kind in resources["requests"]
        assert kind in resources["limits"]
    # Measured idle RSS is about 50 MB: the limit must leave room above it.
    assert _mebibytes(resources["limits"]["memory"]) >= 96
    assert _mebibytes(resources["requests"]["memory"]) >= 48
    security = pod.sidecar["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod.spec["securityContext"]["runAsUser"] == _dockerfile_user()
    # The pod waits long enough for the sidecar's whole shutdown.
    assert pod.spec["terminationGracePeriodSeconds"] > settings.shutdown_timeout


def _mebibytes(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, f"memory quantity {quantity!r}: use Mi or Gi"
    number, unit = match.groups()
    return int(number) * (1024 if unit == "Gi" else 1)


# ---------------------------------------------------------------- Dockerfile


def dockerfile() -> str:
    # Joined continuation lines: one instruction per line.
    return (REPO / "Dockerfile").read_text().replace("\\\n", " ")


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in dockerfile().splitlines() if line.startswith(name + " ")]


def _dockerfile_user() -> int:
    (user,) = instructions("USER")
    return int(user.split(":")[0])


def test_dockerfile_ports_user_healthcheck() -> None:
    (exposed,) = instructions("EXPOSE")
    assert {int(port) for port in exposed.split()} == {GRPC_PORT, MANAGEMENT_PORT}
    assert _dockerfile_user() != 0
    (healthcheck,) = instructions("HEALTHCHECK")
    # The port comes from the configuration (FLAG_SIDECAR_MANAGEMENT_LISTEN), never from the line.
    assert healthcheck.endswith('CMD ["python", "-m", "sidecar.healthcheck"]')
    assert not re.search(r"\b\d{4,5}\b", healthcheck.split("CMD", 1)[1])
    assert (REPO / "sidecar" / "healthcheck.py").is_file()
    assert instructions("ENTRYPOINT") == ['["flag-sidecar"]']
    assert "flag-sidecar" in (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1]


def test_dockerfile_base_image_is_pinned() -> None:
    (base,) = [arg.split("=", 1)[1] for arg in instructions("ARG") if arg.startswith("PYTHON_IMAGE=")]
    # A patch release (optionally with its digest), not a moving tag such as python:3.11-slim.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert instructions("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert "docker buildx imagetools inspect" in dockerfile()  # how to refresh the pin


def test_dockerfile_wheels_stay_out_of_the_runtime_layers() -> None:
    assert dockerfile().startswith("# syntax=docker/dockerfile:1\n")  # RUN --mount needs BuildKit's syntax
    assert not [copy for copy in instructions("COPY") if "--from=build" in copy]
    (install,) = [run for run in instructions("RUN") if "pip install" in run]
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in install
    assert "--no-index --find-links=/wheels flag-sidecar" in install


def test_dockerfile_user_and_group_exist() -> None:
    (user,) = instructions("USER")
    uid, gid = (int(part) for part in user.split(":"))
    (install,) = [run for run in instructions("RUN") if "useradd" in run]
    assert re.search(rf"groupadd .*--gid {gid} flag-sidecar", install)
    assert re.search(rf"useradd .*--uid {uid} --gid {gid} .*flag-sidecar$", install.strip())


def test_the_healthcheck_asks_the_configured_management_port(serve) -> None:
    sidecar = serve()
    sidecar.address()  # serving: /readyz is 200

    def port() -> int | None:
        found = re.search(r"management endpoints on http://127\.0\.0\.1:(\d+)", sidecar.log)
        return int(found.group(1)) if found else None

    management = eventually(port)

    def check(listen: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_SIDECAR_")}
        env["FLAG_SIDECAR_MANAGEMENT_LISTEN"] = listen
        return subprocess.run(
            [sys.executable, "-m", "sidecar.healthcheck"], env=env, capture_output=True, text=True, timeout=30
        )

    assert eventually(lambda: check(f"127.0.0.1:{management}").returncode == 0)
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        result = check(f"127.0.0.1:{unused.getsockname()[1]}")
    assert result.returncode == 1
    assert "/readyz" in result.stderr
    off = check("off")
    assert off.returncode == 1
    assert "management listener is off" in off.stderr


def test_the_healthcheck_asks_loopback_for_an_any_address_listener() -> None:
    assert healthcheck.readyz_url({"FLAG_SIDECAR_MANAGEMENT_LISTEN": "0.0.0.0:9001"}) == (
        "http://127.0.0.1:9001/readyz"
    )
    assert (
        healthcheck.readyz_url({"FLAG_SIDECAR_MANAGEMENT_LISTEN": "[::]:9001"}) == "http://[::1]:9001/readyz"
    )
    assert healthcheck.readyz_url({}) == f"http://127.0.0.1:{MANAGEMENT_PORT}/readyz"  # the default


def test_dockerfile_environment_is_valid_settings() -> None:
    environ: dict[str, str] = {}
    for env in instructions("ENV"):
        for assignment in shlex.split(env):
            name, _, value = assignment.partition("=")
            environ[name] = value
    settings = app_settings.load_settings(cli.build_parser().parse_args(["serve"]), environ)
    assert settings.listen == (f"0.0.0.0:{GRPC_PORT}",)  # a container's port must be reachable
    assert settings.management_listen == f"0.0.0.0:{MANAGEMENT_PORT}"
    assert settings.flags is not None
