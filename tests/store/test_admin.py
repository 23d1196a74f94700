"""FlagAdmin on a real SQLite file: each edit, validated with the whole set; versions, history,
rollback of a deleted flag, imports, pagination."""

from __future__ import annotations

import pytest

from sidecar.engine import read_definitions
from sidecar.sources import open_database
from sidecar.store import admin_edits as edits
from sidecar.store.admin import FlagAdmin
from sidecar.store.admin_errors import (
    AlreadyExistsError,
    InUseError,
    InvalidRequest,
    NotFoundError,
    VersionConflict,
)

FLAG = {
    "key": "f",
    "enabled": True,
    "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "defaultVariantWhenOn": "off",
}
RULE = {
    "id": "r",
    "constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["pro"]}],
    "distributions": [{"variant": "on", "percentage": 100}],
}


@pytest.fixture
def admin(tmp_path):
    made = FlagAdmin(open_database(f"sqlite://{tmp_path}/flags.db"))
    made.start()
    yield made
    made.close()


def test_variant_edits_are_checked_with_the_rules_that_use_them(admin):
    admin.create_flag("default", dict(FLAG, rules=[RULE]), "a")
    with pytest.raises(InvalidRequest) as raised:
        admin.edit_flag("default", "f", 1, edits.delete_variant("on"), "a")
    assert [p.field for p in raised.value.problems] == ["flag.rules[0].distributions[0]"]
    with pytest.raises(InvalidRequest) as raised:
        admin.edit_flag("default", "f", 1, edits.add_variant({"key": "on", "value": True}), "a")
    assert "duplicate" in raised.value.problems[0].description
    with pytest.raises(InvalidRequest):
        admin.edit_flag("default", "f", 1, edits.update_variant("off", {"value": "text"}), "a")  # mixed types
    with pytest.raises(NotFoundError, match="no variant 'maybe'"):
        admin.edit_flag("default", "f", 1, edits.update_variant("maybe", {"value": True}), "a")
    record = admin.edit_flag("default", "f", 1, edits.add_variant({"key": "beta", "value": True}), "a")
    assert [v.key for v in record.definition.variants] == ["on", "off", "beta"]
    assert admin.get_flag("default", "f").version == 2


def test_rules_are_named_by_id_or_index_and_inserted_where_asked(admin):
    admin.create_flag("default", dict(FLAG), "a")
    unnamed = {key: value for key, value in RULE.items() if key != "id"}
    admin.edit_flag("default", "f", 1, edits.add_rule(unnamed), "a")
    admin.edit_flag("default", "f", 2, edits.add_rule(dict(RULE, id="first"), index=0), "a")
    rules = admin.get_flag("default", "f").definition.rules
    assert [rule.id for rule in rules] == ["first", ""]
    replaced = dict(RULE, distributions=[{"variant": "off", "percentage": 100}])
    replaced.pop("id")
    record = admin.edit_flag("default", "f", 3, edits.replace_rule("1", replaced, "flag 'f'"), "a")
    assert record.definition.rules[1].distributions[0].variant == "off"
    record = admin.edit_flag("default", "f", 4, edits.delete_rule("first", "flag 'f'"), "a")
    assert len(record.definition.rules) == 1
    with pytest.raises(NotFoundError, match="no rule 'first'"):
        admin.edit_flag("default", "f", 5, edits.delete_rule("first", "flag 'f'"), "a")


def test_creates_and_expected_versions(admin):
    admin.create_flag("default", dict(FLAG), "a")
    with pytest.raises(AlreadyExistsError) as exists:
        admin.create_flag("default", dict(FLAG), "b")
    assert exists.value.current_version == 1
    with pytest.raises(InvalidRequest, match="expected_version"):
        admin.edit_flag("default", "f", 0, edits.set_fields({"enabled": False}, edits.FLAG_FIELDS), "a")
    with pytest.raises(VersionConflict) as stale:
        admin.delete_flag("default", "f", 3, "a")
    assert (stale.value.expected, stale.value.current) == (3, 1)
    with pytest.raises(NotFoundError):
        admin.delete_flag("default", "nope", 1, "a")


def test_a_deleted_flag_is_rolled_back_to_life_with_a_new_version(admin):
    admin.create_flag("default", dict(FLAG), "a")
    assert admin.delete_flag("default", "f", 1, "a") == 2
    with pytest.raises(InvalidRequest, match="deletion"):
        admin.rollback_flag("default", "f", 0, 2, "a")
    record = admin.rollback_flag("default", "f", 0, 1, "b")
    assert record.version == 3
    actions = [(entry.version, entry.action) for entry in admin.flag_history("default", "f", 0, "").items]
    assert actions == [(3, "rollback"), (2, "delete"), (1, "create")]


def test_history_pages_newest_first(admin):
    admin.create_flag("default", dict(FLAG), "a")
    for version in range(1, 5):
        admin.edit_flag(
            "default", "f", version, edits.set_fields({"name": f"v{version}"}, edits.FLAG_FIELDS), "a"
        )
    versions, token = [], ""
    while True:
        page = admin.flag_history("default", "f", 2, token)
        versions += [entry.version for entry in page.items]
        token = page.next_page_token
        if not token:
            break
    assert versions == [5, 4, 3, 2, 1]


def test_segments_nest_without_cycles_and_in_use_ones_stay(admin):
    admin.create_segment("default", {"key": "pro", "rules": [{"constraints": RULE["constraints"]}]}, "a")
    nested = {"key": "beta", "rules": [{"constraints": [{"operation": "IS_IN_SEGMENT", "values": ["pro"]}]}]}
    admin.create_segment("default", nested, "a")
    cycle = edits.add_rule({"constraints": [{"operation": "IS_IN_SEGMENT", "values": ["beta"]}]})
    with pytest.raises(InvalidRequest, match="cycle"):
        admin.edit_segment("default", "pro", 1, cycle, "a")
    with pytest.raises(InUseError) as in_use:
        admin.delete_segment("default", "pro", 1, "a")
    assert in_use.value.segments == ("beta",)
    assert admin.delete_segment("default", "beta", 1, "a") == 2
    assert admin.delete_segment("default", "pro", 1, "a") == 2
    assert admin.list_segments("default", 0, "").items == ()


def test_import_replaces_the_set_and_a_dry_run_only_says_what_it_would_do(admin):
    admin.create_flag("default", dict(FLAG), "a")
    admin.create_flag("default", dict(FLAG, key="gone"), "a")
    wanted = read_definitions(
        {"flags": [dict(FLAG, name="renamed"), dict(FLAG, key="new")], "segments": [{"key": "s"}]}
    )
    dry = admin.import_set("default", wanted, "ci", dry_run=True)
    assert (dry.added_flags, dry.updated_flags, dry.removed_flags, dry.added_segments) == (
        ("new",),
        ("f",),
        ("gone",),
        ("s",),
    )
    assert admin.get_flag("default", "f").version == 1  # nothing written
    assert admin.import_set("default", wanted, "ci") == dry
    assert admin.get_flag("default", "f").version == 2
    assert admin.import_set("default", wanted, "ci").empty
    assert [r.definition.key for r in admin.list_flags("default", 0, "").items] == ["f", "new"]


def test_a_database_locked_past_its_busy_timeout_is_unavailable_not_a_bug(tmp_path, admin):
    import sqlite3

    from sidecar.sources.database import FlagDatabase, SqliteDialect

    admin.create_flag("default", dict(FLAG), "a")
    holder = sqlite3.connect(tmp_path / "flags.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that does not let go
    try:
        impatient = FlagAdmin(FlagDatabase(SqliteDialect(tmp_path / "flags.db", busy_timeout=0.1)))
        edit = edits.set_fields({"enabled": False}, edits.FLAG_FIELDS)
        with pytest.raises(OSError, match="database is locked"):
            impatient.edit_flag("default", "f", 1, edit, "a")
        assert impatient.get_flag("default", "f").version == 1  # reads go on (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert impatient.edit_flag("default", "f", 1, edit, "a").version == 2
