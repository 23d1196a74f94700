"""Small builders for flag documents, so the test tables stay short."""

from pathlib import Path

from sidecar.engine import build_context, compile_flag_set, evaluate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "flags.yaml"
SOURCE = "test.yaml"

BOOL_VARIANTS = [{"key": "hit", "value": True}, {"key": "miss", "value": False}]


def flag_doc(key="f", rules=(), *, enabled=True, variants=None, on="miss", off="miss", **extra):
    """One flag as a document mapping (not yet wrapped in {"flags": [...]})."""
    doc = {
        "key": key,
        "enabled": enabled,
        "variants": BOOL_VARIANTS if variants is None else variants,
        "rules": list(rules),
    }
    if on is not None:
        doc["defaultVariantWhenOn"] = on
    if off is not None:
        doc["defaultVariantWhenOff"] = off
    doc.update(extra)
    return doc


def rule(*constraints, serve="hit", rule_id=None, distributions=None, bucket_by=None):
    """A flag rule: AND of `constraints`, serving `serve` at 100% unless `distributions` is given."""
    body = {"constraints": list(constraints)}
    if rule_id is not None:
        body["id"] = rule_id
    body["distributions"] = distributions or [{"variant": serve, "percentage": 100}]
    if bucket_by is not None:
        body["bucketBy"] = bucket_by
    return body


def split(*shares):
    """Distributions from (variant, percentage) pairs."""
    return [{"variant": variant, "percentage": percentage} for variant, percentage in shares]


def constraint(operation, values=None, prop="x"):
    body = {"operation": operation}
    if prop is not None:
        body["property"] = prop
    if values is not None:
        body["values"] = values
    return body


def segment(key, *rules):
    """A segment whose rules are each a list of constraints."""
    return {"key": key, "rules": [{"constraints": list(constraints)} for constraints in rules]}


def document(*flags, segments=()):
    return {"flags": list(flags), "segments": list(segments)}


def compile_one(doc, key="f"):
    return compile_flag_set(doc, SOURCE).flags[key]


def run(flag, attrs=None, user_id="user-1"):
    """Evaluate without and with debug; they must agree. Returns the non-debug evaluation."""
    context = build_context(user_id, attrs)
    plain = evaluate(flag, context, debug=False)
    traced = evaluate(flag, context, debug=True)
    assert (plain.value, plain.variant, plain.reason, plain.error_code) == (
        traced.value,
        traced.variant,
        traced.reason,
        traced.error_code,
    )
    assert plain.stack_trace == ()
    assert traced.stack_trace
    return plain


def holds(operation, values, attrs, prop="x", segments=()):
    """Whether a single-constraint rule matches `attrs`."""
    flag = compile_one(
        document(flag_doc(rules=[rule(constraint(operation, values, prop))]), segments=segments)
    )
    return run(flag, attrs).variant == "hit"
