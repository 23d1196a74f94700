"""A cached evaluation always equals a fresh one, and a change is never answered from the cache."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.engine import build_context, evaluate
from sidecar.sources import FileSource
from sidecar.store import FlagStore

from .conftest import flag, write_flags

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["pro", "enterprise", "free", "a@example.com", "10.1.2.3", "acc-1", "XX"]),
    st.text(max_size=8),
)
contexts = st.dictionaries(
    st.sampled_from(["plan", "email", "country", "ip", "accountId", "age", "other"]), scalars, max_size=6
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_id=st.sampled_from(["", "u1", "u2", "user-3"]), attributes=contexts, repeat=st.integers(1, 3))
def test_cached_equals_fresh(user_id, attributes, repeat):
    store = _example_store()
    context = build_context(user_id, attributes)
    for key in store.flag_keys():
        fresh = evaluate(store.view().flag(key), context)
        for _ in range(repeat):
            assert store.evaluate(key, context) == fresh
    assert store.evaluate_all(context) == [evaluate(store.view().flag(k), context) for k in store.flag_keys()]


@settings(max_examples=200, deadline=None)
@given(
    user_id=st.sampled_from(["", "u1", "user-3"]),
    attributes=contexts,
    picks=st.lists(st.integers(0, 30), min_size=1, max_size=8),
    unknown=st.lists(st.sampled_from(["nope", "zzz", "a-missing-flag"]), max_size=3),
)
def test_filtered_evaluate_all_is_each_flag_in_key_order(user_id, attributes, picks, unknown):
    # Without the evaluation cache a filtered call runs the plan's steps; with it, flag by flag
    # (an empty filter means every flag: covered above).
    cached = _example_store()
    keys = cached.flag_keys()
    requested = [keys[i % len(keys)] for i in picks] + unknown
    context = build_context(user_id, attributes)
    expected = [cached.evaluate(key, context) for key in sorted(set(requested))]
    assert cached.evaluate_all(context, requested) == expected
    assert _uncached_store().evaluate_all(context, requested) == expected


_store: FlagStore | None = None
_plain_store: FlagStore | None = None


def _uncached_store() -> FlagStore:
    global _plain_store
    if _plain_store is None:
        _plain_store = FlagStore(FileSource(EXAMPLES))
        _plain_store._reload(initial=True)
    return _plain_store


def _example_store() -> FlagStore:
    global _store
    if _store is None:
        _store = FlagStore(FileSource(EXAMPLES), eval_cache_size=100_000)
        _store._reload(initial=True)  # no watcher: the example file is never edited here
    return _store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plans=st.lists(st.sampled_from(["pro", "free", "enterprise"]), min_size=1, max_size=4),
    edits=st.lists(
        st.sampled_from(["flip-default", "segment-pro", "segment-free", "disable"]), min_size=1, max_size=4
    ),
)
def test_no_stale_answer_after_a_change(tmp_path_factory, plans, edits):
    path = tmp_path_factory.mktemp("flags") / "flags.yaml"
    state = {"default": "off", "segment": ["pro"], "enabled": True}

    def write() -> None:
        rule = {
            "id": "beta",
            "constraints": [{"operation": "IS_IN_SEGMENT", "values": ["beta"]}],
            "distributions": [{"variant": "on", "percentage": 50}, {"variant": "off", "percentage": 50}],
        }
        write_flags(
            path,
            [flag("f", rules=[rule], enabled=state["enabled"], default=state["default"])],
            [
                {
                    "key": "beta",
                    "rules": [
                        {
                            "constraints": [
                                {"property": "plan", "operation": "ONE_OF", "values": state["segment"]}
                            ]
                        }
                    ],
                }
            ],
        )

    write()
    store = FlagStore(FileSource(path), eval_cache_size=1000)
    store._reload(initial=True)
    contexts = [build_context(f"u{i}", {"plan": plan}) for i, plan in enumerate(plans)]
    for edit in edits:
        for context in contexts:  # fill the cache
            store.evaluate("f", context)
        if edit == "flip-default":
            state["default"] = "on" if state["default"] == "off" else "off"
        elif edit == "disable":
            state["enabled"] = not state["enabled"]
        else:
            state["segment"] = [edit.removeprefix("segment-")]
        write()
        store.reload()
        for context in contexts:
            assert store.evaluate("f", context) == evaluate(store.view().flag("f"), context)
