import gc
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from sidecar.engine import ErrorCode, FlagSetError, Reason, build_context
from sidecar.sources import FileSource
from sidecar.sources import file as file_source
from sidecar.store import FlagStore, load_flag_file, parse_flag_document

from .conftest import flag, wait_until, write_flags

# The promise: an edit is served within a second. Events make it ~0.1 s, so WITHIN_A_SECOND keeps a
# wide margin; the other reload tests wait longer because they check what is served, not how fast.
WITHIN_A_SECOND = 1.0
PICKUP = 3.0

BETA_RULE = {
    "id": "beta",
    "constraints": [{"operation": "IS_IN_SEGMENT", "values": ["beta"]}],
    "distributions": [{"variant": "on", "percentage": 100}],
}


def beta_segment(*plans: str) -> dict:
    return {
        "key": "beta",
        "rules": [{"constraints": [{"property": "plan", "operation": "ONE_OF", "values": list(plans)}]}],
    }


def test_serves_the_file(flag_file, make_store):
    store = make_store(flag_file)
    assert store.ready
    assert store.evaluate("a", build_context("u1")).variant == "off"
    assert store.flag_keys() == ["a", "b"]


def test_unknown_flag_is_flag_not_found(flag_file, make_store):
    result = make_store(flag_file).evaluate("nope", build_context("u1"))
    assert result.error_code is ErrorCode.FLAG_NOT_FOUND
    assert "nope" in result.error_message


def test_evaluate_all_is_sorted_and_filters(flag_file, make_store):
    store = make_store(flag_file)
    assert [e.flag_key for e in store.evaluate_all(build_context("u"))] == ["a", "b"]
    picked = store.evaluate_all(build_context("u"), ["zz", "b"])
    assert [e.flag_key for e in picked] == ["b", "zz"]
    assert picked[1].error_code is ErrorCode.FLAG_NOT_FOUND


def test_broken_initial_file_lists_every_problem(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  - key: x\n    enabled: maybe\n    variants: []\n")
    store = FlagStore(FileSource(path))
    with pytest.raises(FlagSetError) as raised:
        store.start()
    messages = [str(p) for p in raised.value.problems]
    assert len(messages) == 2
    assert all(str(path) in m and "flag 'x'" in m for m in messages)
    assert not store.ready


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  - key: x\n    variants: [\n")
    with pytest.raises(FlagSetError) as raised:
        load_flag_file(path)
    assert "line" in str(raised.value.problems[0])


def test_yaml_scalars_are_read_as_yaml_1_1_reads_them():
    examples = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"
    text = examples.read_text() + "extra: [on, off, yes, no, 0x1F, 1_000, ~, 1.5e+3, !!str 5]\n"
    document = parse_flag_document(text, "flags.yaml")
    assert document["extra"] == [True, False, True, False, 31, 1000, None, 1500.0, "5"]
    assert document["flags"] == yaml.safe_load(text)["flags"]


def test_yaml_syntax_error_is_worded_by_the_pure_python_parser(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  - key: x\n    variants: [\n")
    # (libyaml would say "did not find expected node content")
    wording = "line 4, column 1: expected the node content, but found '<stream end>'"
    with pytest.raises(FlagSetError, match=wording):
        load_flag_file(path)


def test_loading_leaves_the_garbage_collector_as_it_was(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("flags: []\n")
    load_flag_file(path)
    assert gc.isenabled()
    gc.disable()
    try:
        load_flag_file(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_json_files_are_read_as_json(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(
        '{"flags": [{"key": "j", "enabled": true, "variants": [{"key": "v", "value": 1}],'
        ' "defaultVariantWhenOn": "v"}]}'
    )
    assert list(load_flag_file(path).flags) == ["j"]
    path.write_text('{"flags": [}')
    with pytest.raises(FlagSetError, match="not valid JSON at line 1"):
        load_flag_file(path)


def test_edit_is_picked_up_within_a_second(flag_file, make_store):
    store = make_store(flag_file)
    changes = []
    store.subscribe(changes.append)
    write_flags(flag_file, [flag("a", default="on"), flag("c")])
    assert wait_until(lambda: changes, timeout=WITHIN_A_SECOND)
    change = changes[-1]
    assert (change.added, change.updated, change.removed) == ({"c"}, {"a"}, {"b"})
    assert store.evaluate("a", build_context("u")).variant == "on"
    assert store.evaluate("b", build_context("u")).error_code is ErrorCode.FLAG_NOT_FOUND


def test_in_place_write_is_picked_up(flag_file, make_store):
    store = make_store(flag_file)
    text = flag_file.read_text().replace("defaultVariantWhenOn: 'off'", "defaultVariantWhenOn: 'on'", 1)
    flag_file.write_text(text)
    assert wait_until(lambda: store.evaluate("a", build_context("u")).variant == "on", timeout=PICKUP)


def test_kubernetes_configmap_symlink_swap(tmp_path, make_store):
    # A mounted ConfigMap: flags.yaml -> ..data/flags.yaml, ..data -> ..<timestamp>; an update
    # writes a new timestamped directory and renames a new ..data link over the old one.
    mount = tmp_path / "mount"
    (mount / "..2026_01").mkdir(parents=True)
    write_flags(mount / "..2026_01" / "flags.yaml", [flag("a")])
    os.symlink("..2026_01", mount / "..data")
    os.symlink("..data/flags.yaml", mount / "flags.yaml")
    store = make_store(mount / "flags.yaml")
    assert store.evaluate("a", build_context("u")).variant == "off"

    (mount / "..2026_02").mkdir()
    write_flags(mount / "..2026_02" / "flags.yaml", [flag("a", default="on")])
    os.symlink("..2026_02", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    shutil.rmtree(mount / "..2026_01")
    assert wait_until(
        lambda: store.evaluate("a", build_context("u")).variant == "on", timeout=WITHIN_A_SECOND
    )


def test_broken_edit_keeps_the_last_good_flags(flag_file, make_store, caplog):
    store = make_store(flag_file)
    flag_file.write_text("flags:\n  - key: a\n    enabled: true\n    variants: [{key: on, value: 1}]\n")
    assert wait_until(lambda: store.stats["rejected_reloads"] == 1, timeout=PICKUP)
    assert store.evaluate("a", build_context("u")).variant == "off"
    assert store.flag_keys() == ["a", "b"]
    rejected = [r for r in caplog.records if "rejected flag set" in r.getMessage()]
    assert rejected
    assert "read it as the boolean true" in rejected[0].getMessage()
    # A later good edit is applied as usual.
    write_flags(flag_file, [flag("a", default="on")])
    assert wait_until(lambda: store.evaluate("a", build_context("u")).variant == "on", timeout=PICKUP)


def test_empty_file_is_rejected_not_served_as_no_flags(flag_file, make_store):
    store = make_store(flag_file)
    flag_file.write_text("")  # what a reader sees between an editor's truncate and its write
    assert not store.reload()
    assert store.flag_keys() == ["a", "b"]
    write_flags(flag_file, [])
    assert store.reload(), "an explicit empty list is a valid set"
    assert store.flag_keys() == []


def test_deleted_file_keeps_serving(flag_file, make_store):
    store = make_store(flag_file)
    flag_file.unlink()
    assert not store.reload()
    assert store.evaluate("a", build_context("u")).variant == "off"


def flags_text(*keys: str) -> str:
    return yaml.safe_dump({"flags": [flag(key) for key in keys]}, sort_keys=False)


def test_a_file_caught_mid_write_is_not_rejected(flag_file, make_store, caplog):
    """Two writes 50 ms apart, the second truncating the file and filling it a little later (as a
    plain `open(path, "w")` writer does): the watcher sees it empty, waits, and judges it whole."""
    store = make_store(flag_file)
    flag_file.write_text(flags_text("a", "b", "c"))
    time.sleep(0.05)
    with flag_file.open("w") as file:
        file.flush()  # truncated: a reader now sees an empty file
        time.sleep(file_source.EMPTY_GRACE_SECONDS / 3)
        file.write(flags_text("a", "b", "d"))
    assert wait_until(lambda: store.flag_keys() == ["a", "b", "d"], timeout=PICKUP)
    assert store.stats["rejected_reloads"] == 0
    assert not [r for r in caplog.records if "rejected flag set" in r.getMessage()]


def test_a_file_that_stays_empty_is_still_rejected_once(flag_file, make_store):
    store = make_store(flag_file)
    flag_file.write_text("")
    assert wait_until(lambda: store.stats["rejected_reloads"] == 1, timeout=PICKUP)
    time.sleep(0.5)  # a few more polls: the same empty file is not judged again
    assert store.stats["rejected_reloads"] == 1
    assert store.flag_keys() == ["a", "b"]


def test_a_deleted_file_is_reported_once_and_its_return_too(flag_file, make_store, caplog):
    store = make_store(flag_file)
    caplog.set_level(logging.INFO, logger="sidecar.store.flag_store")
    flag_file.unlink()

    def messages(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    assert wait_until(lambda: messages("deleted"), timeout=PICKUP)
    assert wait_until(lambda: store.source.missing, timeout=PICKUP)
    time.sleep(0.5)  # a few more polls: still one warning
    assert messages("deleted") == [
        f"flag file {flag_file} deleted, still serving the last good set of 2 flags"
    ]
    assert store.stats["rejected_reloads"] == 0  # a missing file is not a rejected reload
    assert store.evaluate("a", build_context("u")).variant == "off"
    write_flags(flag_file, [flag("a", default="on"), flag("b")])
    assert wait_until(lambda: store.evaluate("a", build_context("u")).variant == "on", timeout=PICKUP)
    assert messages("is back") == [f"flag file {flag_file} is back; it is reloaded if its content changed"]
    assert not store.source.missing


def test_an_unreadable_file_is_reported_once_counted_and_caught_up_on(flag_file, make_store, caplog):
    # A directory where the file was: it stats, but reading it fails (as permission denied would,
    # which root, running these tests, never meets).
    store = make_store(flag_file)
    caplog.set_level(logging.INFO, logger="sidecar.store.flag_store")

    def messages(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    flag_file.unlink()
    flag_file.mkdir()
    assert wait_until(lambda: messages("cannot be read"), timeout=PICKUP)
    time.sleep(0.5)  # a few more polls: still one warning
    assert messages("cannot be read") == [
        f"flag file {flag_file} cannot be read (Is a directory), still serving the last good set of 2 flags"
    ]
    assert store.stats["source_lost"] >= 1
    assert store.stats["rejected_reloads"] == 0
    flag_file.rmdir()
    write_flags(flag_file, [flag("a", default="on"), flag("b")])
    assert wait_until(lambda: store.evaluate("a", build_context("u")).variant == "on", timeout=PICKUP)
    assert messages("can be read again")


def test_versions_increase_only_on_real_changes(flag_file, make_store):
    store = make_store(flag_file)
    assert store.view().flag("a").version == 1
    store.reload()  # same bytes
    write_flags(flag_file, [flag("a"), flag("b")])  # same definitions, rewritten
    store.reload()
    assert store.view().flag("a").version == 1
    write_flags(flag_file, [flag("a", default="on"), flag("b")])
    store.reload()
    assert (store.view().flag("a").version, store.view().flag("b").version) == (2, 1)
    write_flags(flag_file, [flag("b")])
    store.reload()
    write_flags(flag_file, [flag("a"), flag("b")])  # back, with its first definition
    store.reload()
    assert store.view().flag("a").version == 3, "a re-added flag must not reuse an old version"


def test_segment_change_is_never_answered_from_cache(tmp_path, make_store):
    path = tmp_path / "flags.yaml"
    write_flags(path, [flag("f", rules=[BETA_RULE])], [beta_segment("pro")])
    store = make_store(path, eval_cache_size=1000)
    pro = build_context("u1", {"plan": "pro"})
    for _ in range(3):
        assert store.evaluate("f", pro).reason is Reason.TARGETING_MATCH
    assert store.stats["cache_hits"] >= 2
    assert store.flag_set.segments.get("beta") is not None

    write_flags(path, [flag("f", rules=[BETA_RULE])], [beta_segment("enterprise")])
    store.reload()
    assert store.view().flag("f").version == 1, "the flag itself did not change"
    assert store.evaluate("f", pro).reason is Reason.DEFAULT


def test_listeners_hear_only_real_changes(flag_file, make_store):
    store = make_store(flag_file)
    changes = []
    store.subscribe(changes.append)
    write_flags(flag_file, [flag("a"), flag("b")])
    store.reload()
    assert changes == []
    unsubscribe = store.subscribe(lambda change: (_ for _ in ()).throw(RuntimeError("listener bug")))
    write_flags(flag_file, [flag("a", default="on"), flag("b")])
    store.reload()
    assert [c.updated for c in changes] == [{"a"}], "a failing listener must not stop the others"
    unsubscribe()


def test_cache_ttl_expires_evaluation_cache_entries(tmp_path, make_store):
    path = tmp_path / "flags.yaml"
    write_flags(path, [flag("f", rules=[BETA_RULE])], [beta_segment("pro")])
    store = make_store(path, cache_ttl=0.05, eval_cache_size=10)
    store.evaluate("f", build_context("u1", {"plan": "pro"}))
    assert len(store._evaluations) == 1
    assert wait_until(lambda: store._evaluations.expire() or len(store._evaluations) == 0, timeout=PICKUP)


def test_flags_and_segments_have_no_ttl_cache_of_their_own(flag_file, make_store):
    # Over the in-memory snapshot they saved nothing; they return in front of a remote source.
    store = make_store(flag_file)
    assert not hasattr(store, "_flags")
    assert not hasattr(store, "_segments")
    assert not hasattr(store, "get_segment")
    assert store._evaluations is None  # and no evaluation cache unless --eval-cache-size asks
