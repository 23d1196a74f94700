"""Several sidecars on one SQLite file, flag sets, the import/export commands, and the options
that refuse an admin listener that could not be used safely."""

from __future__ import annotations

import json

import yaml

from flagsidecar.v1 import admin_pb2
from tests.admin.conftest import AUTH, evaluate, new_flag, staff_rule
from tests.conftest import eventually
from tests.serve_process import run_cli


def test_two_sidecars_on_one_file_both_follow_a_write(sidecar):
    writer = sidecar()
    follower = sidecar(admin=False)  # another process, reading the same file
    admin = writer.admin()
    admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH)
    evaluations = [writer.evaluation(), follower.evaluation()]
    for stub in evaluations:
        eventually(lambda stub=stub: evaluate(stub, "new-checkout"), timeout=5)
    admin.CreateFlagRule(
        admin_pb2.CreateFlagRuleRequest(flag_key="new-checkout", expected_version=1, rule=staff_rule()),
        metadata=AUTH,
    )
    for stub in evaluations:
        answer = eventually(
            lambda stub=stub: (
                (a := evaluate(stub, "new-checkout", email="b@example.com")) and a.flag_version == 2 and a
            ),
            timeout=5,
        )
        assert answer.variant == "on"


def test_a_sidecar_serves_only_its_flag_set(sidecar):
    writer = sidecar()
    checkout = sidecar("--selector", "flag-set=checkout", admin=False)
    admin = writer.admin()
    admin.CreateFlag(
        admin_pb2.CreateFlagRequest(flag_set="checkout", flag=new_flag("pay-later")), metadata=AUTH
    )
    admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag("in-default")), metadata=AUTH)
    eventually(lambda: evaluate(checkout.evaluation(), "pay-later"), timeout=5)
    eventually(lambda: evaluate(writer.evaluation(), "in-default"), timeout=5)
    assert evaluate(checkout.evaluation(), "in-default") is None
    assert evaluate(writer.evaluation(), "pay-later") is None
    listed = admin.ListFlags(admin_pb2.ListFlagsRequest(flag_set="checkout"), metadata=AUTH)
    assert [stored.flag.key for stored in listed.flags] == ["pay-later"]


def test_import_then_export_round_trips_and_a_dry_run_writes_nothing(tmp_path, sample_flag_file, sidecar):
    uri = f"sqlite://{tmp_path}/flags.db"
    dry = run_cli("flags", "import", str(sample_flag_file), "--source", uri, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ flag " in dry.stdout
    assert "dry run: nothing written" in dry.stdout
    exported = run_cli("flags", "export", "--source", uri)
    assert yaml.safe_load(exported.stdout) == {"flags": []}

    done = run_cli("flags", "import", str(sample_flag_file), "--source", uri, "--actor", "ci")
    assert done.returncode == 0, done.stderr
    assert dry.stdout.replace("would change (dry run: nothing written)", "changed") == done.stdout
    out = tmp_path / "exported.yaml"
    assert run_cli("flags", "export", "--source", uri, "-o", str(out)).returncode == 0
    assert run_cli("validate", str(out)).returncode == 0
    again = run_cli("flags", "import", str(out), "--source", uri)
    assert again.stdout.strip().endswith("no change")
    compact = run_cli("flags", "export", "--source", uri, "--compact")  # JSON on one line
    assert compact.stdout.count("\n") == 1
    assert json.loads(compact.stdout) == yaml.safe_load(out.read_text())

    # What the database serves is what the file serves.
    from_file = yaml.safe_load(sample_flag_file.read_text())
    first = from_file["flags"][0]
    served = sidecar(admin=False)
    answer = eventually(lambda: evaluate(served.evaluation(), first["key"]), timeout=10)
    assert answer.flag_version == 1

    # An edited file: one flag removed, one changed; the diff says so and versions move on.
    from_file["flags"] = from_file["flags"][1:]
    changed = from_file["flags"][0]
    changed["name"] = "renamed"
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(from_file))
    result = run_cli("flags", "import", str(edited), "--source", uri)
    assert f"- flag {first['key']}\n" in result.stdout
    assert f"~ flag {changed['key']}\n" in result.stdout
    eventually(lambda: evaluate(served.evaluation(), first["key"]) is None, timeout=5)
    assert evaluate(served.evaluation(), changed["key"]).flag_version == 2


def test_a_broken_file_is_not_imported(tmp_path):
    uri = f"sqlite://{tmp_path}/flags.db"
    broken = tmp_path / "broken.yaml"
    broken.write_text("flags:\n  - key: a\n    enabled: maybe\n    variants: []\n")
    result = run_cli("flags", "import", str(broken), "--source", uri)
    assert result.returncode == 1
    assert "enabled is required" in result.stdout
    assert "at least one variant" in result.stdout
    assert yaml.safe_load(run_cli("flags", "export", "--source", uri).stdout) == {"flags": []}


def test_migrate_brings_a_database_up_to_date(tmp_path):
    result = run_cli("migrate", "--source", f"sqlite://{tmp_path}/new.db")
    assert result.returncode == 0, result.stderr
    assert "schema up to date" in result.stdout
    assert (tmp_path / "new.db").exists()


def test_an_admin_listener_needs_a_database_and_authentication(tmp_path, sample_flag_file, token_file):
    no_database = run_cli(
        "serve",
        "--flags",
        str(sample_flag_file),
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-token-file",
        str(token_file),
    )
    assert no_database.returncode == 2
    assert "writes to a flag database" in no_database.stderr
    no_auth = run_cli("serve", "--source", f"sqlite://{tmp_path}/f.db", "--admin-listen", "127.0.0.1:0")
    assert no_auth.returncode == 2
    assert "--admin-token-file" in no_auth.stderr
    same_port = run_cli(
        "serve",
        "--source",
        f"sqlite://{tmp_path}/f.db",
        "--listen",
        "127.0.0.1:50999",
        "--admin-listen",
        "127.0.0.1:50999",
        "--admin-token-file",
        str(token_file),
    )
    assert same_port.returncode == 2
    assert "evaluation listener" in same_port.stderr
    other_set_from_a_file = run_cli("serve", "--flags", str(sample_flag_file), "--selector", "flag-set=x")
    assert other_set_from_a_file.returncode == 2
    assert "flag sets are for database sources" in other_set_from_a_file.stderr
