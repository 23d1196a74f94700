"""Settings from command-line flags, environment variables and defaults."""

import argparse
import dataclasses
from pathlib import Path

import pytest

from sidecar.app import settings as app_settings
from sidecar.options import Layer


def settings_from(argv=(), env=None) -> app_settings.Settings:
    parser = argparse.ArgumentParser()
    app_settings.add_options(parser)
    return app_settings.load_settings(parser.parse_args(list(argv)), env or {})


def test_defaults():
    settings = settings_from()
    assert settings == app_settings.Settings(
        config=None,
        flags=None,
        source=None,
        state_dir=None,
        listen=("127.0.0.1:50051",),
        management_listen="127.0.0.1:8014",
        management_max_connections=256,
        management_timeout=5.0,
        health_listen="",
        cache_ttl=30.0,
        eval_cache_size=0,
        log_level="info",
        log_format="json",
        log_repeat_limit=10,
        log_repeat_interval=60.0,
        tls_cert=None,
        tls_key=None,
        tls_client_ca=None,
        handshake_timeout=5.0,
        max_request_bytes=1024 * 1024,
        max_context_keys=256,
        max_context_bytes=64 * 1024,
        max_flag_key_bytes=1024,
        max_evaluate_all_keys=1000,
        max_response_bytes=4 * 1024**2,
        max_concurrent_calls=512,
        max_streams=64,
        max_streams_per_connection=16,
        stream_idle_timeout=300.0,
        flagd_listen="",
        context_value=None,
        context_from_header=None,
        exporter=None,
        flush_interval=10.0,
        max_events_in_memory=10_000,
        events_buffer_bytes=64 * 1024**2,
        max_event_details_bytes=64 * 1024,
        spool_dir=None,
        spool_max_bytes=256 * 1024**2,
        events_on_evaluate_all=True,
        events_flush_timeout=5.0,
        shutdown_grace=10.0,
        shutdown_timeout=15.0,
    )


def test_environment_overrides_defaults():
    settings = settings_from(
        env={
            "FLAG_SIDECAR_FLAGS": "/etc/flags.yaml",
            "FLAG_SIDECAR_LISTEN": "0.0.0.0:6000",
            "FLAG_SIDECAR_CACHE_TTL": "2.5",
            "FLAG_SIDECAR_LOG_LEVEL": "DEBUG",
            "FLAG_SIDECAR_SHUTDOWN_GRACE": "0",
        }
    )
    s = settings
    assert (s.flags, s.listen, s.cache_ttl, s.log_level, s.shutdown_grace) == (
        Path("/etc/flags.yaml"),
        ("0.0.0.0:6000",),
        2.5,
        "debug",
        0.0,
    )


def test_command_line_overrides_environment():
    settings = settings_from(
        ["--listen", "[::1]:7000", "--cache-ttl", "1"],
        env={"FLAG_SIDECAR_LISTEN": "0.0.0.0:6000", "FLAG_SIDECAR_CACHE_TTL": "not-even-parsed"},
    )
    assert settings.listen == ("[::1]:7000",)
    assert settings.cache_ttl == 1.0


def test_empty_environment_variable_counts_as_unset():
    assert settings_from(env={"FLAG_SIDECAR_LISTEN": ""}).listen == ("127.0.0.1:50051",)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--cache-ttl", "soon"], {}, "invalid cache_ttl 'soon' (from command-line flag --cache-ttl)"),
        ([], {"FLAG_SIDECAR_CACHE_TTL": "-1"}, "(from environment variable FLAG_SIDECAR_CACHE_TTL)"),
        ([], {"FLAG_SIDECAR_SHUTDOWN_GRACE": "inf"}, "invalid shutdown_grace 'inf'"),
        (["--listen", "50051"], {}, "expected HOST:PORT"),
        (["--listen", "localhost:http"], {}, "port 'http' is not a number from 0 to 65535"),
        (["--listen", "localhost:70000"], {}, "port '70000'"),
        ([], {"FLAG_SIDECAR_LOG_LEVEL": "loud"}, "expected one of debug, info, warning, error"),
    ],
)
def test_bad_values_name_the_option_and_where_they_came_from(argv, env, message):
    with pytest.raises(app_settings.ConfigError) as caught:
        settings_from(argv, env)
    assert message in str(caught.value)


def test_required_option_names_flag_and_environment_variable():
    with pytest.raises(
        app_settings.ConfigError, match="flags is required: pass --flags PATH or set FLAG_SIDECAR_FLAGS"
    ):
        app_settings.require(settings_from(), "flags")


def test_a_later_layer_slots_in_between_environment_and_default():
    # What a config-file layer will do: fill what neither the command line nor the environment set.
    file_layer = Layer({"listen": "127.0.0.1:9999", "cache_ttl": "5"}, lambda o: f"file key {o.name}")
    settings = app_settings.resolve(
        [
            app_settings.command_line_layer(argparse.Namespace(cache_ttl="7")),
            app_settings.environment_layer({}),
            file_layer,
        ]
    )
    assert (settings.listen, settings.cache_ttl) == (("127.0.0.1:9999",), 7.0)


def test_options_table_and_settings_agree():
    fields = dataclasses.fields(app_settings.Settings)
    assert [o.name for o in app_settings.OPTIONS] == [f.name for f in fields]
    for option in app_settings.OPTIONS:
        assert option.env_var == "FLAG_SIDECAR_" + option.name.upper()
        if option.default is None:
            continue
        defaults = option.default if option.multiple else (option.default,)
        for default in defaults:
            assert option.parse(str(default) or "off") == default


def test_event_options():
    settings = settings_from(
        [
            "--exporter",
            "file:dir=/var/events,format=jsonl",
            "--exporter",
            "webhook:url=http://127.0.0.1:9000/events,secret=s3cret",
            "--flush-interval",
            "0.5",
            "--max-events-in-memory",
            "500",
            "--spool-dir",
            "/var/spool/flag-sidecar",
            "--events-on-evaluate-all",
            "false",
        ]
    )
    assert settings.exporter == (
        "file:dir=/var/events,format=jsonl",
        "webhook:url=http://127.0.0.1:9000/events,secret=s3cret",
    )
    assert settings.flush_interval == 0.5
    assert settings.max_events_in_memory == 500
    assert settings.spool_dir == Path("/var/spool/flag-sidecar")
    assert settings.events_on_evaluate_all is False
    env = settings_from(env={"FLAG_SIDECAR_EXPORTER": "log\nfile:dir=/tmp/x"})
    assert env.exporter == ("log", "file:dir=/tmp/x")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--exporter", ":x"], "invalid exporter"),
        (["--flush-interval", "0"], "above 0"),
        (["--max-events-in-memory", "0"], "1 or more"),
        (["--events-on-evaluate-all", "maybe"], "true or false"),
    ],
)
def test_bad_event_options(argv, message):
    with pytest.raises(app_settings.ConfigError, match=message):
        settings_from(argv)
