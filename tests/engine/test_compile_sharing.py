"""What compiling shares to keep a large flag set small, and the document it may consume."""

import copy

import yaml

from sidecar.engine import build_context, compile_flag_set, evaluate

from .helpers import EXAMPLES, SOURCE


def test_consume_empties_the_flag_list_and_compiles_the_same():
    doc = yaml.safe_load(EXAMPLES.read_text())
    kept = copy.deepcopy(doc)
    plain = compile_flag_set(doc, SOURCE)
    assert doc == kept  # by default the document is left as it was
    consumed = compile_flag_set(doc, SOURCE, consume=True)
    assert doc["flags"] == [None] * len(kept["flags"])
    assert consumed.flags.keys() == plain.flags.keys()
    assert [flag.fingerprint for flag in consumed.flags.values()] == [
        flag.fingerprint for flag in plain.flags.values()
    ]
    context = build_context("user-1", {"plan": "pro", "country": "PT", "email": "a@example.com"})
    for key, flag in plain.flags.items():
        assert evaluate(consumed.flags[key], context) == evaluate(flag, context)
