"""The flag document the flagd-compatibility tests serve, and the edit they make to it.

Shared by the in-process tests and by the client scripts' expectations (expected.json): the
same flags, through the same server, must give the same answers to every client.
"""

from __future__ import annotations

import copy
from typing import Any


def _bool_variants() -> list[dict[str, Any]]:
    return [{"key": "on", "value": True}, {"key": "off", "value": False}]


OBJECT_VALUE: dict[str, Any] = {"color": "red", "size": 3, "tags": ["a", "b"], "nested": {"x": True}}

FLAGS: dict[str, Any] = {
    "flags": [
        {
            "key": "bool-flag",
            "enabled": True,
            "variants": _bool_variants(),
            "defaultVariantWhenOn": "on",
            "defaultVariantWhenOff": "off",
        },
        {
            "key": "string-flag",
            "enabled": True,
            "variants": [{"key": "greeting", "value": "hi"}, {"key": "parting", "value": "bye"}],
            "defaultVariantWhenOn": "greeting",
            "defaultVariantWhenOff": "parting",
        },
        {
            "key": "int-flag",
            "enabled": True,
            "variants": [{"key": "ten", "value": 10}, {"key": "hundred", "value": 100}],
            "defaultVariantWhenOn": "hundred",
            "defaultVariantWhenOff": "ten",
        },
        {
            # Read as a float by the clients. (Not int-flag: the Python provider caches STATIC answers
            # by flag key alone, so one flag read as both integer and float returns the cached type.)
            "key": "whole-number-flag",
            "enabled": True,
            "variants": [{"key": "seven", "value": 7}],
            "defaultVariantWhenOn": "seven",
            "defaultVariantWhenOff": "seven",
        },
        {
            "key": "float-flag",
            "enabled": True,
            "variants": [{"key": "half", "value": 0.5}, {"key": "big", "value": 3.75}],
            "defaultVariantWhenOn": "big",
            "defaultVariantWhenOff": "half",
        },
        {
            "key": "object-flag",
            "enabled": True,
            "variants": [
                {
                    "key": "red",
                    "value": {"color": "red", "size": 3, "tags": ["a", "b"], "nested": {"x": True}},
                },
                {"key": "empty", "value": {}},
            ],
            "defaultVariantWhenOn": "red",
            "defaultVariantWhenOff": "empty",
        },
        {
            # TARGETING_MATCH for staff e-mail addresses, DEFAULT for everyone else.
            "key": "targeted-flag",
            "enabled": True,
            "variants": [{"key": "staff", "value": "internal"}, {"key": "public", "value": "external"}],
            "defaultVariantWhenOn": "public",
            "defaultVariantWhenOff": "public",
            "rules": [
                {
                    "id": "staff",
                    "constraints": [
                        {"property": "email", "operation": "ENDS_WITH", "values": ["@example.com"]}
                    ],
                    "distributions": [{"variant": "staff", "percentage": 100}],
                }
            ],
        },
        {
            # The targeting key is the user id: user-1 is matched through $userId.
            "key": "user-flag",
            "enabled": True,
            "variants": _bool_variants(),
            "defaultVariantWhenOn": "off",
            "defaultVariantWhenOff": "off",
            "rules": [
                {
                    "id": "user-1",
                    "constraints": [{"property": "$userId", "operation": "ONE_OF", "values": ["user-1"]}],
                    "distributions": [{"variant": "on", "percentage": 100}],
                }
            ],
        },
        {
            # A 50/50 split bucketed on the user id: reason SPLIT.
            "key": "split-flag",
            "enabled": True,
            "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}],
            "defaultVariantWhenOn": "a",
            "defaultVariantWhenOff": "a",
            "rules": [
                {
                    "id": "half",
                    "distributions": [{"variant": "a", "percentage": 50}, {"variant": "b", "percentage": 50}],
                }
            ],
        },
        {
            "key": "disabled-flag",
            "enabled": False,
            "variants": _bool_variants(),
            "defaultVariantWhenOn": "on",
            "defaultVariantWhenOff": "off",
        },
        {
            # Matches only with the server's static context value injected=set (--context-value).
            "key": "injected-flag",
            "enabled": True,
            "variants": [{"key": "internal", "value": "INTERNAL"}, {"key": "external", "value": "EXTERNAL"}],
            "defaultVariantWhenOn": "external",
            "defaultVariantWhenOff": "external",
            "rules": [
                {
                    "id": "injected",
                    "constraints": [{"property": "injected", "operation": "ONE_OF", "values": ["set"]}],
                    "distributions": [{"variant": "internal", "percentage": 100}],
                }
            ],
        },
        {
            # Matches when the x-tenant header, mapped to "tenant" (--context-from-header), is acme.
            "key": "header-flag",
            "enabled": True,
            "variants": _bool_variants(),
            "defaultVariantWhenOn": "off",
            "defaultVariantWhenOff": "off",
            "rules": [
                {
                    "id": "acme",
                    "constraints": [{"property": "tenant", "operation": "ONE_OF", "values": ["acme"]}],
                    "distributions": [{"variant": "on", "percentage": 100}],
                }
            ],
        },
        {
            # Enabled with a rule but no defaultVariantWhenOn: anyone the rule misses gets no value (DEFAULT).
            "key": "no-default-flag",
            "enabled": True,
            "variants": [{"key": "x", "value": "X"}],
            "rules": [
                {
                    "id": "nobody",
                    "constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["none"]}],
                    "distributions": [{"variant": "x", "percentage": 100}],
                }
            ],
        },
        {
            "key": "segment-flag",
            "enabled": True,
            "variants": _bool_variants(),
            "defaultVariantWhenOn": "off",
            "defaultVariantWhenOff": "off",
            "rules": [
                {
                    "id": "beta",
                    "constraints": [{"operation": "IS_IN_SEGMENT", "values": ["beta"]}],
                    "distributions": [{"variant": "on", "percentage": 100}],
                }
            ],
        },
        {
            # The flag the tests edit: its default moves from "foo" to "bar".
            "key": "changing-flag",
            "enabled": True,
            "variants": [{"key": "foo", "value": "foo"}, {"key": "bar", "value": "bar"}],
            "defaultVariantWhenOn": "foo",
            "defaultVariantWhenOff": "foo",
        },
    ],
    "segments": [
        {
            "key": "beta",
            "name": "Beta testers",
            "rules": [{"constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["beta"]}]}],
        },
        {
            "key": "unused",
            "name": "No flag uses this one",
            "rules": [{"constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["x"]}]}],
        },
    ],
}

# What the server is started with in these tests (flagd's -X and -H).
STATIC_CONTEXT = {"injected": "set"}
HEADER_TO_CONTEXT = {"X-Tenant": "tenant"}


def flags() -> dict[str, Any]:
    return copy.deepcopy(FLAGS)


def changed(document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document with changing-flag serving "bar" instead of "foo"."""
    document = copy.deepcopy(document or FLAGS)
    for flag in document["flags"]:
        if flag["key"] == "changing-flag":
            flag["defaultVariantWhenOn"] = "bar"
    return document
