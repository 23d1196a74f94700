"""README's option table lists every option of the table in sidecar/config.py, and its examples of
health and limit messages match what the code says."""

from __future__ import annotations

from pathlib import Path

from sidecar import config

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_option_is_in_the_readme_table() -> None:
    table_rows = [line for line in README.splitlines() if line.startswith("| `--")]
    for option in config.OPTIONS:
        assert any(
            row.startswith(f"| `{option.flag} ") and f"`{option.env_var}`" in row for row in table_rows
        ), f"README's option table has no row for {option.flag} / {option.env_var}"


def test_readme_mentions_the_management_endpoints_and_metric_names() -> None:
    for text in ("/healthz", "/readyz", "/metrics", "flag_sidecar_evaluations_total", "docs/deployment.md"):
        assert text in README
