"""Generated flag files and requests for the RPC benchmarks.

Three kinds of flag, cycled through the N-flag sets:

- `static`: no rules, served by its default (reason STATIC);
- `rules`: 5 rules x 3 constraints, the last one testing a segment; the bench user fails the first
  four rules on their third constraint and matches the fifth, so every constraint is evaluated;
- `split`: one rule with no constraints, a three-way percentage split on the user id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2

from flagsidecar.v1 import evaluation_pb2

KINDS = ("static", "rules", "split")
USER_ID = "user-42"
ATTRIBUTES: dict[str, Any] = {"plan": "pro", "email": "ana@example.com", "age": 34, "country": "PT"}

SEGMENT: dict[str, Any] = {
    "key": "beta",
    "name": "Beta testers",
    "rules": [
        {
            "constraints": [
                {"property": "plan", "operation": "ONE_OF", "values": ["pro", "enterprise"]},
                {"property": "country", "operation": "NOT_ONE_OF", "values": ["XX"]},
            ]
        }
    ],
}


def make_distinct(document: dict[str, Any], index: int) -> dict[str, Any]:
    """The flag with values of its own (rule ids, one more ONE_OF value, thresholds), answering the
    bench user as before: a flag set in which no two flags share a part."""
    for number, rule in enumerate(document.get("rules", ())):
        rule["id"] = f"{rule['id']}-{index}"
        for constraint in rule.get("constraints", ()):
            values = constraint.get("values", [])
            if constraint["operation"] in ("ONE_OF", "NOT_ONE_OF"):
                values.append(f"value-{index}-{number}")
            elif constraint["operation"] == "GREATER_OR_EQUAL":
                values[0] = 40 + index % 1000 + number
    for variant in document["variants"]:
        variant["description"] = f"variant {variant['key']} of flag {index}"
    return document


def flag(key: str, kind: str) -> dict[str, Any]:
    on_off = [{"key": "on", "value": True}, {"key": "off", "value": False}]
    if kind == "static":
        return {"key": key, "enabled": True, "variants": on_off, "defaultVariantWhenOn": "on"}
    if kind == "rules":
        rules = [
            {
                "id": f"rule-{index}",
                "constraints": [
                    {"property": "plan", "operation": "ONE_OF", "values": ["pro", "enterprise"]},
                    {"property": "email", "operation": "ENDS_WITH", "values": ["@example.com"]},
                    # Fails for the bench user (age 34) in rules 0-3.
                    {"property": "age", "operation": "GREATER_OR_EQUAL", "values": [40 + index]},
                ],
                "distributions": [{"variant": "on", "percentage": 100}],
            }
            for index in range(4)
        ]
        rules.append(
            {
                "id": "rule-4",
                "constraints": [
                    {"property": "country", "operation": "ONE_OF", "values": ["PT", "ES", "FR"]},
                    {"property": "age", "operation": "LOWER", "values": [65]},
                    {"operation": "IS_IN_SEGMENT", "values": ["beta"]},
                ],
                "distributions": [{"variant": "on", "percentage": 100}],
            }
        )
        return {
            "key": key,
            "enabled": True,
            "variants": on_off,
            "defaultVariantWhenOn": "off",
            "rules": rules,
        }
    if kind == "split":
        return {
            "key": key,
            "enabled": True,
            "variants": [{"key": color, "value": color} for color in ("red", "green", "blue")],
            "defaultVariantWhenOn": "blue",
            "rules": [
                {
                    "id": "three-way",
                    "distributions": [
                        {"variant": "red", "percentage": 33.33},
                        {"variant": "green", "percentage": 33.33},
                        {"variant": "blue", "percentage": 33.34},
                    ],
                }
            ],
        }
    raise ValueError(kind)


def flag_key(index: int, kind: str) -> str:
    return f"f{index:05d}-{kind}"


def flag_document(count: int, distinct: bool = False) -> dict[str, Any]:
    """`count` flags cycling through KINDS (keys f00000-static, f00001-rules, ...), one segment;
    `distinct`: no two flags share a part (make_distinct)."""
    flags = [flag(flag_key(index, KINDS[index % 3]), KINDS[index % 3]) for index in range(count)]
    if distinct:
        flags = [make_distinct(body, index) for index, body in enumerate(flags)]
    return {"flags": flags, "segments": [SEGMENT]}


def write_flag_file(directory: Path, count: int) -> Path:
    """A YAML flag file (the format users write; JSON is a subset of YAML, but we want the real
    YAML parser on the start-up path), in block style."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: 10,000 flags in 2 s, not 15
    path = directory / f"flags-{count}.yaml"
    path.write_text(yaml.dump(flag_document(count), Dumper=dumper, sort_keys=False))
    return path


def user() -> evaluation_pb2.User:
    message = evaluation_pb2.User(id=USER_ID)
    context = struct_pb2.Struct()
    context.update(ATTRIBUTES)
    message.context.CopyFrom(context)
    return message


def evaluate_request(kind: str) -> bytes:
    """A serialized EvaluateRequest for the first flag of `kind` (present in every set of >= 3 flags)."""
    key = flag_key(KINDS.index(kind), kind)
    return evaluation_pb2.EvaluateRequest(flag_key=key, user=user()).SerializeToString()


def evaluate_all_request() -> bytes:
    return evaluation_pb2.EvaluateAllRequest(user=user()).SerializeToString()


EVALUATE_METHOD = "/flagsidecar.v1.EvaluationService/Evaluate"
EVALUATE_ALL_METHOD = "/flagsidecar.v1.EvaluationService/EvaluateAll"
