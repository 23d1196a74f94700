"""README's option table lists every option the components declare (sidecar/app/settings.py), its
examples of health and limit messages match what the code says, and its examples run as shown: the
lines `make run` logs, `grpcurl list`, the `config --print` excerpt and the Node snippet."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sidecar.app import settings as app_settings
from tests.conftest import eventually
from tests.flagd import java_client
from tests.serve_process import ServeProcess

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_option_is_in_the_readme_table() -> None:
    table_rows = [line for line in README.splitlines() if line.startswith("| `--")]
    for option in app_settings.OPTIONS:
        assert any(
            row.startswith(f"| `{option.flag} ") and f"`{option.env_var}`" in row for row in table_rows
        ), f"README's option table has no row for {option.flag} / {option.env_var}"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_command_line_synopsis_shows_every_command_with_options_it_has() -> None:
    from sidecar.cli import build_parser

    synopsis = README.split("## Command line\n\n```\n", 1)[1].split("```", 1)[0]
    shown: set[tuple[str, ...]] = set()
    for line in synopsis.splitlines():
        words = line.split()
        assert words[0] == "flag-sidecar", line
        parser: argparse.ArgumentParser = build_parser()
        path: tuple[str, ...] = ()
        for word in words[1:]:
            if word not in _subcommands(parser):
                break
            parser, path = _subcommands(parser)[word], (*path, word)
        known = {name for action in parser._actions for name in action.option_strings}
        for option in re.findall(r"(?<![\w-])--?[a-z][\w-]*", line.split(" ", 1)[1]):
            assert option in known, f"README's `{line}`: {option} is not an option of it"
        shown.add(path)

    def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        children = _subcommands(parser)
        if not children:
            yield path
        for name, child in children.items():
            yield from leaves(child, (*path, name))

    assert set(leaves(build_parser(), ())) <= shown, "README's command line leaves a command out"


def option_table_rows() -> dict[str, list[str]]:
    """The rows of README's option table (those with an environment variable), by option flag."""
    rows: dict[str, list[str]] = {}
    for line in README.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if line.startswith("| `--") and len(cells) == 4 and cells[1].startswith("`FLAG_SIDECAR_"):
            rows.setdefault(cells[0].strip("`").split(" ")[0], cells)
    return rows


def test_the_readme_tables_options_and_defaults_are_the_declared_ones() -> None:
    declared = {option.flag: option for option in app_settings.OPTIONS}
    rows = option_table_rows()
    assert set(rows) == set(declared)
    for flag, (_, env_var, default, _) in rows.items():
        option = declared[flag]
        assert env_var.split("`")[1] == option.env_var
        shown = default.strip("`")
        if option.default is None:
            assert shown == "none" or shown.startswith("required"), f"{flag}: README says {default}"
            continue
        value = option.parse(shown)  # README writes the default as the option takes it: 1MiB, off
        assert (value,) == option.default if option.multiple else value == option.default, flag


def test_readme_mentions_the_management_endpoints_and_metric_names() -> None:
    for text in ("/healthz", "/readyz", "/metrics", "flag_sidecar_evaluations_total", "docs/deployment.md"):
        assert text in README


# ---------------------------------------------------------------- the README's examples, run

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "flagd" / "node"


def code_blocks() -> list[tuple[str, str]]:
    """Every fenced block of the README: (language, text)."""
    return [(lang, text) for lang, text in re.findall(r"^```(\w*)\n(.*?)^```$", README, re.M | re.S)]


def block_starting(prefix: str) -> str:
    (text,) = [text for _, text in code_blocks() if text.startswith(prefix)]
    return text


def without_ports(text: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)


def listening_ports(process: ServeProcess, count: int) -> list[int]:
    def bound() -> list[int] | None:
        if process.process.poll() is not None:
            pytest.fail(f"serve exited early with {process.process.returncode}:\n{process.log}")
        ports = [int(port) for port in re.findall(r"listening on 127\.0\.0\.1:(\d+)", process.log)]
        return ports if len(ports) == count else None

    return eventually(bound, timeout=15)


@pytest.fixture(scope="module")
def make_run() -> Iterator[ServeProcess]:
    """What `make run` starts (examples/flags.yaml, given relative, as the Makefile does)."""
    process = ServeProcess(Path("examples/flags.yaml"))
    try:
        listening_ports(process, 1)
        yield process
    finally:
        process.stop()


def test_quick_start_shows_the_lines_make_run_logs(make_run: ServeProcess) -> None:
    shown = [json.loads(line) for line in block_starting('{"level": "info"').splitlines()]
    logged = [json.loads(line) for line in make_run.lines[: len(shown)]]
    for entry in logged:
        del entry["timestamp"]  # left out in the README
        entry["message"] = without_ports(entry["message"])
    assert logged == [{**entry, "message": without_ports(entry["message"])} for entry in shown]
    assert "listening on" in logged[-1]["message"]  # nothing else before serving


def test_grpcurl_list_shows_every_service(make_run: ServeProcess) -> None:
    console = block_starting('$ grpcurl -plaintext -d \'{"flag_key":"new-checkout"')
    listed = console.split("$ grpcurl -plaintext 127.0.0.1:50051 list\n", 1)[1].split("\n\n", 1)[0]
    with grpc.insecure_channel(make_run.address()) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [answer] = stub.ServerReflectionInfo(iter([request]), timeout=5)
    served = sorted(service.name for service in answer.list_services_response.service)  # as grpcurl
    assert listed.splitlines() == served


def test_deployment_ports_table_names_every_service(make_run: ServeProcess) -> None:
    table = (REPO / "docs" / "deployment.md").read_text().split("## The ports", 1)[1].split("\n\n", 2)[1]
    (row,) = [line for line in table.splitlines() if line.startswith("| 50051 ")]
    for service in re.findall(r"services: ([^)]*)\)", make_run.log)[0].split(", "):
        assert f"`{service}`" in row
    assert "`grpc.health.v1.Health`" in row
    assert "`grpc.reflection.v1alpha.ServerReflection`" in row


def test_config_print_excerpt_marks_every_line_it_leaves_out(tmp_path: Path) -> None:
    command = "FLAG_SIDECAR_LOG_FORMAT=text flag-sidecar config --print --config sidecar.yaml --cache-ttl 5"
    console = block_starting(f"$ {command}\n")
    (tmp_path / "sidecar.yaml").write_text(block_starting("flags: /etc/flag-sidecar/flags/flags.yaml\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_SIDECAR_")}
    env["FLAG_SIDECAR_LOG_FORMAT"] = "text"
    printed = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", *command.split()[2:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    # The excerpt is runs of consecutive output lines, in order, with "# ..." wherever lines are
    # left out (also at the end) and nowhere else.
    position = 0
    for index, run in enumerate(console.split("\n", 1)[1].split("# ...\n")):
        lines = run.splitlines()
        start = printed.index(lines[0], position) if lines else len(printed)
        assert index == 0 or start > position, f"'# ...' before {lines[:1]} marks no left-out line"
        assert index > 0 or start == 0, "the excerpt does not start at the first line"
        assert printed[start : start + len(lines)] == lines, f"lines left out without '# ...' in {lines}"
        position = start + len(lines)
    assert position == len(printed), "lines left out at the end without '# ...'"


def test_node_snippet_runs_as_written(tmp_path: Path) -> None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "@openfeature").is_dir():
        pytest.skip("node or tests/flagd/node/node_modules (npm ci) is missing")
    (snippet,) = [text for lang, text in code_blocks() if lang == "js"]
    assert "port: 8013" in snippet  # what --flagd-listen on binds
    process = ServeProcess(Path("examples/flags.yaml"), "--flagd-listen", "127.0.0.1:0")
    try:
        flagd_port = listening_ports(process, 2)[1]
        script = tmp_path / "check.mjs"  # the name the README gives it
        script.write_text(snippet.replace("port: 8013", f"port: {flagd_port}"))
        (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules")
        completed = subprocess.run(
            ["node", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        process.stop()
    assert completed.returncode == 0, completed.stderr[-4000:]
    expected = snippet.split("// ", 1)[1].split("\n", 1)[0]  # the comment on the console.log line
    assert completed.stdout.strip() == expected


def test_flagd_connect_snippet_runs_as_written() -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    block = block_starting("pip install 'flag-sidecar[connect]'")
    command = block.split("\ncurl ", 1)[1].replace("\\\n", " ")
    answer = README.split(block, 1)[1].split("prints `", 1)[1].split("`", 1)[0]
    assert ":8013/" in command  # the port the serve line gives
    process = ServeProcess(Path("examples/flags.yaml"), "--flagd-connect-listen", "127.0.0.1:0")
    try:
        port = eventually(lambda: re.search(r"flagd Connect protocol on 127\.0\.0\.1:(\d+)", process.log), 15)
        completed = subprocess.run(
            f"curl {command.replace(':8013/', f':{port.group(1)}/')}",
            shell=True,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        process.stop()
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == json.loads(answer)


def test_java_snippet_runs_as_written(tmp_path: Path) -> None:
    try:
        classpath = java_client.classpath()
    except java_client.JavaUnavailable as exc:
        pytest.skip(str(exc))
    (snippet,) = [text for lang, text in code_blocks() if lang == "java"]
    assert ".port(8013)" in snippet  # what --flagd-listen on binds
    process = ServeProcess(Path("examples/flags.yaml"), "--flagd-listen", "127.0.0.1:0")
    try:
        flagd_port = listening_ports(process, 2)[1]
        source = tmp_path / "Check.java"  # the name the README gives it
        source.write_text(snippet.replace(".port(8013)", f".port({flagd_port})"))
        completed = subprocess.run(
            ["java", "-cp", classpath, str(source)], capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        process.stop()
    assert completed.returncode == 0, completed.stderr[-4000:]
    expected = snippet.split("// prints: ", 1)[1].split("\n", 1)[0]
    assert completed.stdout.strip() == expected
