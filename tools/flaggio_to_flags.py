"""flaggio's MongoDB flags and segments (mongoexport --jsonArray) -> a flag file for
`flag-sidecar flags import` (docs/admin.md, "Moving from flaggio").

    python tools/flaggio_to_flags.py flags.json segments.json > flags.yaml

Warnings (what needs a person: percentages not summing to 100, `$ip`, nested segments, dangling
references) go to stderr; the validator (`flag-sidecar validate`) has the last word.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ZERO_ID = "0" * 24
SEGMENT_OPERATIONS = ("IS_IN_SEGMENT", "ISNT_IN_SEGMENT")


def plain(value: Any) -> Any:
    """Extended JSON (mongoexport) as plain JSON: {"$oid": id} -> id, {"$numberLong": "5"} -> 5..."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((name, inner),) = value.items()
            if name == "$oid":
                return inner
            if name in ("$numberLong", "$numberInt"):
                return int(inner)
            if name == "$numberDouble":
                return float(inner)
            if name == "$numberDecimal":
                number = float(inner)
                return int(number) if number.is_integer() else number
            if name == "$date":
                return plain(inner)
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _unique(base: str, taken: set[str]) -> str:
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "segment"


def variant_key(value: Any, index: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str) and value and len(value) <= 64:
        return value
    return f"variant-{index}"


def convert(flags: list[dict[str, Any]], segments: list[dict[str, Any]], warn: Callable[[str], None]) -> dict:
    flags, segments = plain(flags), plain(segments)
    segment_keys: dict[str, str] = {}
    taken: set[str] = set()
    for segment in segments:
        segment_keys[str(segment["_id"])] = _unique(slug(segment.get("name") or str(segment["_id"])), taken)

    def constraints(raw: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        converted = []
        for constraint in raw or []:
            operation = constraint.get("operation")
            entry: dict[str, Any] = {"operation": operation}
            values = list(constraint.get("values") or [])
            if operation in SEGMENT_OPERATIONS:
                mapped = []
                for value in values:
                    if str(value) in segment_keys:
                        mapped.append(segment_keys[str(value)])
                    else:
                        warn(
                            f"{where}: references segment {value!r}, which does not exist (it never matched)"
                        )
                        mapped.append(str(value))
                values = mapped
            else:
                prop = constraint.get("property") or ""
                if prop == "$ip":
                    warn(f"{where}: property $ip is now `ip`: pass the end user's IP in the context")
                    prop = "ip"
                entry["property"] = prop
            if values:
                entry["values"] = values
            converted.append(entry)
        return converted

    out_segments = []
    for segment in segments:
        key = segment_keys[str(segment["_id"])]
        rules = []
        for rule in segment.get("rules") or []:
            converted = constraints(rule.get("constraints"), f"segment {key!r}")
            if any(c["operation"] in SEGMENT_OPERATIONS for c in converted):
                warn(f"segment {key!r}: a segment inside a segment never matched in flaggio; it does here")
            rules.append({"id": str(rule.get("_id", "")), "constraints": converted})
        entry: dict[str, Any] = {"key": key, "name": segment.get("name") or key}
        if segment.get("description"):
            entry["description"] = segment["description"]
        if rules:
            entry["rules"] = rules
        out_segments.append(entry)

    out_flags = []
    for flag in flags:
        key = flag["key"]
        keys: dict[str, str] = {}
        variant_taken: set[str] = set()
        variants = []
        for index, variant in enumerate(flag.get("variants") or []):
            name = _unique(variant_key(variant.get("value"), index), variant_taken)
            keys[str(variant["_id"])] = name
            entry = {"key": name, "value": variant.get("value")}
            if variant.get("description"):
                entry["description"] = variant["description"]
            variants.append(entry)
        rules = []
        for index, rule in enumerate(flag.get("rules") or []):
            where = f"flag {key!r} rule {index}"
            distributions = []
            for distribution in rule.get("distributions") or []:
                variant = str(distribution.get("variantId") or distribution.get("variant") or "")
                if variant not in keys:
                    warn(f"{where}: a distribution names a deleted variant {variant!r}")
                distributions.append(
                    {"variant": keys.get(variant, variant), "percentage": distribution.get("percentage", 0)}
                )
            total = sum(d["percentage"] for d in distributions)
            if total != 100:
                warn(
                    f"{where}: percentages sum to {total}, not 100 "
                    "(flaggio fell back to the first variant); fix it"
                )
            rules.append(
                {
                    "id": str(rule.get("_id", index)),
                    "constraints": constraints(rule.get("constraints"), where),
                    "distributions": distributions,
                }
            )
        entry = {"key": key, "name": flag.get("name") or key, "enabled": bool(flag.get("enabled"))}
        if flag.get("description"):
            entry["description"] = flag["description"]
        entry["variants"] = variants
        if rules:
            entry["rules"] = rules
        for field in ("defaultVariantWhenOn", "defaultVariantWhenOff"):
            reference = str(flag.get(field) or ZERO_ID)
            if reference != ZERO_ID:
                if reference in keys:
                    entry[field] = keys[reference]
                else:
                    warn(f"flag {key!r}: {field} names a deleted variant {reference!r}; left out")
        out_flags.append(entry)
    return {"flags": out_flags, "segments": out_segments}


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    flags = json.loads(Path(argv[0]).read_text("utf-8"))
    segments = json.loads(Path(argv[1]).read_text("utf-8")) if len(argv) == 2 else []
    document = convert(flags, segments, lambda message: print(f"warning: {message}", file=sys.stderr))
    sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
