"""tools/flaggio_to_flags.py: a mongoexport of flaggio's flags and segments becomes a flag file
that validates and serves what flaggio meant."""

from __future__ import annotations

import json
import subprocess
import sys

from sidecar.engine import evaluate
from sidecar.store import load_flag_file
from tests.serve_process import REPO

SEGMENT_ID = "64b000000000000000000001"
ON, OFF = "64a000000000000000000001", "64a000000000000000000002"

FLAGS = [
    {
        "_id": {"$oid": "64f000000000000000000001"},
        "key": "new-checkout",
        "name": "New checkout",
        "enabled": True,
        "version": {"$numberLong": "7"},
        "variants": [
            {"_id": {"$oid": ON}, "value": True, "description": "new"},
            {"_id": {"$oid": OFF}, "value": False},
        ],
        "rules": [
            {
                "_id": {"$oid": "64c000000000000000000001"},
                "constraints": [
                    {
                        "_id": {"$oid": "64d000000000000000000001"},
                        "property": "",
                        "operation": "IS_IN_SEGMENT",
                        "values": [SEGMENT_ID],
                    },
                ],
                "distributions": [
                    {
                        "_id": {"$oid": "64e000000000000000000001"},
                        "variantId": {"$oid": ON},
                        "percentage": {"$numberInt": "100"},
                    },
                    {
                        "_id": {"$oid": "64e000000000000000000002"},
                        "variantId": {"$oid": OFF},
                        "percentage": 0,
                    },
                ],
            },
            {
                "_id": {"$oid": "64c000000000000000000002"},
                "constraints": [{"property": "$ip", "operation": "IS_IN_NETWORK", "values": ["10.0.0.0/8"]}],
                "distributions": [{"variantId": {"$oid": ON}, "percentage": 60}],
            },
        ],
        "defaultVariantWhenOn": {"$oid": OFF},
        "defaultVariantWhenOff": {"$oid": "000000000000000000000000"},
    }
]
SEGMENTS = [
    {
        "_id": {"$oid": SEGMENT_ID},
        "name": "Beta testers",
        "rules": [
            {
                "_id": {"$oid": "64b100000000000000000001"},
                "constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["pro"]}],
            }
        ],
    }
]


def test_a_mongoexport_becomes_a_flag_file(tmp_path):
    (tmp_path / "flags.json").write_text(json.dumps(FLAGS))
    (tmp_path / "segments.json").write_text(json.dumps(SEGMENTS))
    result = subprocess.run(
        [
            sys.executable,
            "tools/flaggio_to_flags.py",
            str(tmp_path / "flags.json"),
            str(tmp_path / "segments.json"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert "percentages sum to 60" in result.stderr
    assert "$ip is now `ip`" in result.stderr
    converted = tmp_path / "flags.yaml"
    converted.write_text(result.stdout)
    # The rule summing to 60 is what a person must fix: the validator says so.
    text = result.stdout.replace("percentage: 60", "percentage: 100")
    converted.write_text(text)
    flag_set = load_flag_file(converted)
    flag = flag_set.flags["new-checkout"]
    assert [variant for variant in flag.variants] == ["true", "false"]
    assert flag.default_variant_when_off is None
    assert list(flag_set.segments) == ["beta-testers"]
    assert evaluate(flag, {"$userId": "u", "plan": "pro"}).variant == "true"
    assert evaluate(flag, {"$userId": "u", "ip": "10.1.2.3"}).variant == "true"
    assert evaluate(flag, {"$userId": "u", "plan": "free"}).variant == "false"
