"""The --config YAML layer, precedence across all four sources, and `config --print`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from sidecar import cli
from sidecar.app import settings as app_settings
from sidecar.config_file import file_layer
from sidecar.options import ConfigError, parse_size
from sidecar.server.limits import (
    DEFAULT_MAX_CONTEXT_BYTES,
    DEFAULT_MAX_CONTEXT_KEYS,
    DEFAULT_MAX_EVALUATE_ALL_KEYS,
    DEFAULT_MAX_FLAG_KEY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
)


def settings_from(argv=(), env=None) -> tuple[app_settings.Settings, dict[str, str]]:
    parser = argparse.ArgumentParser()
    app_settings.add_options(parser)
    return app_settings.load_settings_with_sources(parser.parse_args(list(argv)), env or {})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    file = write(tmp_path / "sidecar.yaml", "cache_ttl: 1\nlog_level: warning\nshutdown_grace: 3\n")
    settings, sources = settings_from(
        ["--config", str(file), "--cache-ttl", "2"],
        {"FLAG_SIDECAR_CACHE_TTL": "4", "FLAG_SIDECAR_LOG_LEVEL": "error"},
    )
    assert (settings.cache_ttl, settings.log_level, settings.shutdown_grace, settings.shutdown_timeout) == (
        2.0,
        "error",
        3.0,
        15.0,
    )
    assert sources["cache_ttl"] == "command-line flag --cache-ttl"
    assert sources["log_level"] == "environment variable FLAG_SIDECAR_LOG_LEVEL"
    assert sources["shutdown_grace"] == f"config file {file}, key shutdown_grace"
    assert sources["shutdown_timeout"] == "default"


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    file = write(tmp_path / "sidecar.yaml", "flags: /etc/flags/flags.yaml\n")
    settings, _ = settings_from(env={"FLAG_SIDECAR_CONFIG": str(file)})
    assert settings.flags == Path("/etc/flags/flags.yaml")
    assert settings.config == file


def test_file_values_lists_kebab_keys_and_nulls(tmp_path: Path) -> None:
    file = write(
        tmp_path / "sidecar.yaml",
        """
listen:
  - 127.0.0.1:0
  - unix:///run/flag-sidecar/flags.sock
management-listen: "off"
max_request_bytes: 2MiB
max_context_keys: 10
tls_cert: null
""",
    )
    settings, _ = settings_from(["--config", str(file)])
    assert settings.listen == ("127.0.0.1:0", "unix:///run/flag-sidecar/flags.sock")
    assert settings.management_listen == ""
    assert (settings.max_request_bytes, settings.max_context_keys) == (2 * 1024 * 1024, 10)
    assert settings.tls_cert is None


def test_several_listen_addresses_from_flags_and_env() -> None:
    assert settings_from(["--listen", "127.0.0.1:1", "--listen", "unix:/tmp/s.sock"])[0].listen == (
        "127.0.0.1:1",
        "unix:/tmp/s.sock",
    )
    assert settings_from(env={"FLAG_SIDECAR_LISTEN": "127.0.0.1:1, [::1]:2"})[0].listen == (
        "127.0.0.1:1",
        "[::1]:2",
    )


def test_unknown_keys_are_rejected_with_a_suggestion(tmp_path: Path) -> None:
    file = write(tmp_path / "sidecar.yaml", "cache_tll: 5\nlisten_adress: x\nfrobnicate: 1\n")
    with pytest.raises(app_settings.ConfigError) as caught:
        file_layer(file, app_settings.OPTIONS)
    message = str(caught.value)
    assert message.startswith(f"config file {file}: ")
    assert "unknown key 'cache_tll' (did you mean 'cache_ttl'?)" in message
    assert "unknown key 'listen_adress' (did you mean 'listen'?)" in message
    assert (
        "unknown key 'frobnicate'; known keys: flags, source, selector, source_poll_interval, "
        "source_timeout, source_tls_ca, source_tls_cert, source_tls_key, state_dir, cache_ttl, "
    ) in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cache_ttl: soon\n", "invalid cache_ttl 'soon' (from config file {file}, key cache_ttl): expected"),
        ("max_request_bytes: 12XB\n", "'12XB' (from config file {file}, key max_request_bytes)"),
        ("cache_ttl: [1, 2]\n", "['1', '2'] (from config file {file}, key cache_ttl): expected a single"),
        ("listen: {port: 1}\n", "config file {file}: key 'listen': expected a value or a list of values"),
        ("config: other.yaml\n", "key 'config' cannot be set in a config file"),
        ("cache_ttl: 1\ncache-ttl: 2\n", "key 'cache-ttl': cache_ttl is set twice"),
        ("- just\n- a list\n", "config file {file}: expected a mapping of option names to values, not list"),
        ("cache_ttl: [1\n", "config file {file} is not valid YAML"),
        ('listen: ["unix:"]\n', "expected unix:///absolute/path"),
    ],
)
def test_bad_files_and_values_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    file = write(tmp_path / "sidecar.yaml", text)
    with pytest.raises(app_settings.ConfigError) as caught:
        settings_from(["--config", str(file)])
    assert message.format(file=file) in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*absent\.yaml: No such file"):
        settings_from(["--config", str(tmp_path / "absent.yaml")])


def test_health_listen_from_flag_environment_and_file(tmp_path: Path) -> None:
    assert settings_from()[0].health_listen == ""  # off by default
    file = write(tmp_path / "sidecar.yaml", "health-listen: 0.0.0.0:8015\n")
    settings, sources = settings_from(["--config", str(file)])
    assert (settings.health_listen, sources["health_listen"]) == (
        "0.0.0.0:8015",
        f"config file {file}, key health_listen",
    )
    env = {"FLAG_SIDECAR_HEALTH_LISTEN": "[::]:9015"}
    assert settings_from(["--config", str(file)], env)[0].health_listen == "[::]:9015"
    assert settings_from(["--config", str(file), "--health-listen", "off"], env)[0].health_listen == ""
    with pytest.raises(app_settings.ConfigError, match=r"invalid health_listen '8015' .*expected HOST:PORT"):
        settings_from(["--health-listen", "8015"])


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    file = write(tmp_path / "sidecar.yaml", "# nothing yet\n")
    assert settings_from(["--config", str(file)])[0].listen == ("127.0.0.1:50051",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-cert", "c.pem"], "--tls-cert (from command-line flag --tls-cert) needs both --tls-cert and"),
        (["--tls-key", "k.pem"], "--tls-key (from command-line flag --tls-key) needs both"),
        (["--tls-client-ca", "ca.pem"], "(mutual TLS) needs --tls-cert and --tls-key as well"),
        (
            ["--tls-cert", "c", "--tls-key", "k", "--listen", "unix:///tmp/x.sock"],
            "TLS applies to TCP listeners, and --listen has none",
        ),
        (["--shutdown-grace", "20"], "--shutdown-timeout (from default) is 15s, shorter than --shutdown-gr"),
        (["--max-context-keys", "-1"], "expected a whole number, 0 or more"),
        (["--management-listen", "8014"], "expected HOST:PORT"),
        (["--log-format", "xml"], "expected one of json, text"),
    ],
)
def test_inconsistent_settings_are_rejected(argv: list[str], message: str) -> None:
    with pytest.raises(app_settings.ConfigError) as caught:
        settings_from(argv)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("65536", 65536),
        ("64KiB", 65536),
        ("64k", 65536),
        ("4MiB", 4 * 1024**2),
        ("1 GiB", 1024**3),
        ("10b", 10),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_context_limit_defaults_agree_with_the_option_table() -> None:
    assert app_settings.option_named("max_context_keys").default == DEFAULT_MAX_CONTEXT_KEYS
    assert app_settings.option_named("max_context_bytes").default == DEFAULT_MAX_CONTEXT_BYTES
    assert app_settings.option_named("max_flag_key_bytes").default == DEFAULT_MAX_FLAG_KEY_BYTES
    assert app_settings.option_named("max_evaluate_all_keys").default == DEFAULT_MAX_EVALUATE_ALL_KEYS
    assert app_settings.option_named("max_response_bytes").default == DEFAULT_MAX_RESPONSE_BYTES


def test_config_print_round_trips_and_names_sources(tmp_path: Path, capsys, monkeypatch) -> None:
    for name in app_settings.OPTIONS_BY_NAME:
        monkeypatch.delenv(app_settings.option_named(name).env_var, raising=False)
    monkeypatch.setenv("FLAG_SIDECAR_LOG_FORMAT", "text")
    file = write(tmp_path / "sidecar.yaml", "cache_ttl: 5\nlisten: [127.0.0.1:7000, unix:///tmp/x.sock]\n")
    assert cli.main(["config", "--print", "--config", str(file), "--management-listen", "off"]) == 0
    printed = capsys.readouterr().out
    assert f"cache_ttl: 5.0  # config file {file}, key cache_ttl\n" in printed
    assert "log_format: text  # environment variable FLAG_SIDECAR_LOG_FORMAT\n" in printed
    assert "management_listen: 'off'  # command-line flag --management-listen\n" in printed
    assert "shutdown_grace: 10.0  # default\n" in printed
    assert f"# Config file: {file} (from command-line flag --config)" in printed
    # What it prints is a config file that gives the same settings.
    assert set(yaml.safe_load(printed)) == {o.name for o in app_settings.OPTIONS if o.in_file}
    again = write(tmp_path / "printed.yaml", printed)
    monkeypatch.delenv("FLAG_SIDECAR_LOG_FORMAT")
    original, _ = settings_from(
        ["--config", str(file), "--management-listen", "off"], {"FLAG_SIDECAR_LOG_FORMAT": "text"}
    )
    reread, _ = settings_from(["--config", str(again)])
    assert reread == app_settings.Settings(**{**original.__dict__, "config": again})


def test_config_without_print_and_bad_config_exit_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["config"])
    assert caught.value.code == 2
    assert "use `flag-sidecar config --print" in capsys.readouterr().err
    bad = write(tmp_path / "bad.yaml", "cache_tll: 1\n")
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve", "--config", str(bad)])
    assert caught.value.code == 2
    assert "did you mean 'cache_ttl'?" in capsys.readouterr().err
