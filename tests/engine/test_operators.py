"""One table per operation (DESIGN.md operator table and typing rules).

Each case builds a one-rule flag around a single constraint on property "x" and checks whether the
rule matches. A type mismatch is never an error: the positive test is false, its negation true.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.engine import OPERATIONS
from sidecar.engine.operators import SPECS

from .helpers import constraint, holds, segment

EXAMPLE_FLAGS = Path(__file__).resolve().parents[2] / "examples" / "flags.yaml"  # no regex in it
MISSING = {}
NULL = {"x": None}


def table(*cases):
    """Parametrize a test with (id, values, attrs, expected) rows."""
    return pytest.mark.parametrize(
        ("values", "attrs", "expected"),
        [pytest.param(values, attrs, expected, id=case_id) for case_id, values, attrs, expected in cases],
    )


def test_every_operation_has_a_table():
    module = sys.modules[__name__]
    missing = [op for op in OPERATIONS if not hasattr(module, f"test_{op.lower()}")]
    assert missing == []
    assert len(OPERATIONS) == 19 + 8  # flaggio's, and flagd's sem_ver comparisons


# ---------------------------------------------------------------- equality


@table(
    ("string-match", ["pro", "enterprise"], {"x": "enterprise"}, True),
    ("string-no-match", ["pro", "enterprise"], {"x": "free"}, False),
    ("string-case-sensitive", ["pro"], {"x": "Pro"}, False),
    ("empty-string-is-a-value", [""], {"x": ""}, True),
    ("int-equals-int", [5], {"x": 5}, True),
    ("int-equals-float", [5], {"x": 5.0}, True),
    ("float-equals-int", [5.0], {"x": 5}, True),
    ("float-match", [0.5], {"x": 0.5}, True),
    ("number-no-match", [5], {"x": 6}, False),
    ("string-5-vs-number-5", [5], {"x": "5"}, False),
    ("number-5-vs-string-5", ["5"], {"x": 5}, False),
    ("true-vs-1", [1], {"x": True}, False),
    ("1-vs-true", [True], {"x": 1}, False),
    ("false-vs-0", [0], {"x": False}, False),
    ("0-vs-false", [False], {"x": 0}, False),
    ("true-vs-string-true", ["true"], {"x": True}, False),
    ("bool-match", [False], {"x": False}, True),
    ("bool-no-match", [True], {"x": False}, False),
    ("mixed-list-string", ["a", 1, True], {"x": "a"}, True),
    ("mixed-list-number", ["a", 1, True], {"x": 1.0}, True),
    ("mixed-list-bool", ["a", 1, True], {"x": True}, True),
    ("int-beyond-2^53-exact", [2**53 + 1], {"x": 2**53 + 1}, True),
    ("int-beyond-2^53-neighbour", [2**53 + 1], {"x": 2**53}, False),
    ("int-beyond-float-range", [10**400], {"x": 10**400}, True),
    ("missing", ["a"], MISSING, False),
    ("null", ["a"], NULL, False),
)
def test_one_of(values, attrs, expected):
    assert holds("ONE_OF", values, attrs) is expected


@table(
    ("string-listed", ["pro", "enterprise"], {"x": "pro"}, False),
    ("string-not-listed", ["pro", "enterprise"], {"x": "free"}, True),
    ("int-vs-float-listed", [5], {"x": 5.0}, False),
    ("number-not-listed", [5], {"x": 7}, True),
    ("string-5-vs-number-5", [5], {"x": "5"}, True),
    ("number-5-vs-string-5", ["5"], {"x": 5}, True),
    ("true-vs-1", [1], {"x": True}, True),
    ("1-vs-true", [True], {"x": 1}, True),
    ("bool-listed", [True], {"x": True}, False),
    ("missing", ["a"], MISSING, True),
    ("null", ["a"], NULL, True),
)
def test_not_one_of(values, attrs, expected):
    assert holds("NOT_ONE_OF", values, attrs) is expected


# ---------------------------------------------------------------- numeric comparisons


@table(
    ("above", [10], {"x": 11}, True),
    ("equal", [10], {"x": 10}, False),
    ("equal-float", [10], {"x": 10.0}, False),
    ("below", [10], {"x": 9}, False),
    ("float-above", [10], {"x": 10.5}, True),
    ("float-threshold", [1.5], {"x": 2}, True),
    ("negative", [-3], {"x": -2.5}, True),
    ("every-value-all-below", [10, 20], {"x": 21}, True),
    ("every-value-one-not-below", [10, 20], {"x": 15}, False),
    ("string-number", [10], {"x": "11"}, False),
    ("bool-true", [0], {"x": True}, False),
    ("missing", [10], MISSING, False),
    ("null", [10], NULL, False),
)
def test_greater(values, attrs, expected):
    assert holds("GREATER", values, attrs) is expected


@table(
    ("above", [10], {"x": 11}, True),
    ("equal", [10], {"x": 10}, True),
    ("equal-float-vs-int", [10], {"x": 10.0}, True),
    ("below", [10], {"x": 9.99}, False),
    ("every-value-equal-max", [10, 20], {"x": 20}, True),
    ("every-value-between", [10, 20], {"x": 15}, False),
    ("string-number", [10], {"x": "10"}, False),
    ("bool-true-vs-1", [1], {"x": True}, False),
    ("missing", [10], MISSING, False),
    ("null", [10], NULL, False),
)
def test_greater_or_equal(values, attrs, expected):
    assert holds("GREATER_OR_EQUAL", values, attrs) is expected


@table(
    ("below", [10], {"x": 9}, True),
    ("equal", [10], {"x": 10}, False),
    ("above", [10], {"x": 11}, False),
    ("negative", [10], {"x": -1}, True),
    ("float", [10], {"x": 9.5}, True),
    ("every-value-below-min", [10, 5], {"x": 4}, True),
    ("every-value-between", [10, 5], {"x": 7}, False),
    ("string-number", [10], {"x": "9"}, False),
    ("bool-false", [10], {"x": False}, False),
    ("missing", [10], MISSING, False),
    ("null", [10], NULL, False),
)
def test_lower(values, attrs, expected):
    assert holds("LOWER", values, attrs) is expected


@table(
    ("below", [10], {"x": 9}, True),
    ("equal", [10], {"x": 10}, True),
    ("equal-int-vs-float", [10.0], {"x": 10}, True),
    ("above", [10], {"x": 10.01}, False),
    ("every-value-equal-min", [10, 5], {"x": 5}, True),
    ("every-value-between", [10, 5], {"x": 6}, False),
    ("string-number", [10], {"x": "1"}, False),
    ("bool-false-vs-0", [0], {"x": False}, False),
    ("missing", [10], MISSING, False),
    ("null", [10], NULL, False),
)
def test_lower_or_equal(values, attrs, expected):
    assert holds("LOWER_OR_EQUAL", values, attrs) is expected


# ---------------------------------------------------------------- presence


@table(
    ("string", None, {"x": "a"}, True),
    ("empty-string", None, {"x": ""}, True),
    ("zero", None, {"x": 0}, True),
    ("false", None, {"x": False}, True),
    ("other-property-only", None, {"y": "a"}, False),
    ("missing", None, MISSING, False),
    ("null", None, NULL, False),
)
def test_exists(values, attrs, expected):
    assert holds("EXISTS", values, attrs) is expected


@table(
    ("string", None, {"x": "a"}, False),
    ("empty-string", None, {"x": ""}, False),
    ("zero", None, {"x": 0}, False),
    ("false", None, {"x": False}, False),
    ("other-property-only", None, {"y": "a"}, True),
    ("missing", None, MISSING, True),
    ("null", None, NULL, True),
)
def test_doesnt_exist(values, attrs, expected):
    assert holds("DOESNT_EXIST", values, attrs) is expected


# ---------------------------------------------------------------- strings


@table(
    ("substring", ["beta"], {"x": "my-beta-app"}, True),
    ("whole", ["beta"], {"x": "beta"}, True),
    ("absent", ["beta"], {"x": "alpha"}, False),
    ("any-of-values", ["nope", "et"], {"x": "beta"}, True),
    ("case-sensitive", ["beta"], {"x": "BETA"}, False),
    ("unicode", ["ü"], {"x": "Müller"}, True),
    ("number-for-string-op", ["12"], {"x": 123}, False),
    ("bool-for-string-op", ["true"], {"x": True}, False),
    ("missing", ["beta"], MISSING, False),
    ("null", ["beta"], NULL, False),
)
def test_contains(values, attrs, expected):
    assert holds("CONTAINS", values, attrs) is expected


@table(
    ("substring", ["beta"], {"x": "my-beta-app"}, False),
    ("absent", ["beta"], {"x": "alpha"}, True),
    ("one-of-values-present", ["nope", "et"], {"x": "beta"}, False),
    ("case-sensitive", ["beta"], {"x": "BETA"}, True),
    ("number-for-string-op", ["12"], {"x": 123}, True),
    ("bool-for-string-op", ["true"], {"x": True}, True),
    ("missing", ["beta"], MISSING, True),
    ("null", ["beta"], NULL, True),
)
def test_doesnt_contain(values, attrs, expected):
    assert holds("DOESNT_CONTAIN", values, attrs) is expected


@table(
    ("prefix", ["admin-"], {"x": "admin-bob"}, True),
    ("not-prefix", ["admin-"], {"x": "bob-admin-"}, False),
    ("any-of-values", ["root-", "admin-"], {"x": "admin-bob"}, True),
    ("case-sensitive", ["admin-"], {"x": "Admin-bob"}, False),
    ("number-for-string-op", ["1"], {"x": 123}, False),
    ("missing", ["admin-"], MISSING, False),
    ("null", ["admin-"], NULL, False),
)
def test_starts_with(values, attrs, expected):
    assert holds("STARTS_WITH", values, attrs) is expected


@table(
    ("prefix", ["admin-"], {"x": "admin-bob"}, False),
    ("not-prefix", ["admin-"], {"x": "bob"}, True),
    ("one-of-values-prefix", ["root-", "admin-"], {"x": "root-x"}, False),
    ("number-for-string-op", ["1"], {"x": 123}, True),
    ("missing", ["admin-"], MISSING, True),
    ("null", ["admin-"], NULL, True),
)
def test_doesnt_start_with(values, attrs, expected):
    assert holds("DOESNT_START_WITH", values, attrs) is expected


@table(
    ("suffix", ["@example.com"], {"x": "bob@example.com"}, True),
    ("not-suffix", ["@example.com"], {"x": "bob@example.com.evil"}, False),
    ("any-of-values", ["@a.io", "@b.io"], {"x": "x@b.io"}, True),
    ("case-sensitive", ["@example.com"], {"x": "bob@EXAMPLE.com"}, False),
    ("number-for-string-op", ["3"], {"x": 123}, False),
    ("missing", ["@example.com"], MISSING, False),
    ("null", ["@example.com"], NULL, False),
)
def test_ends_with(values, attrs, expected):
    assert holds("ENDS_WITH", values, attrs) is expected


@table(
    ("suffix", ["@example.com"], {"x": "bob@example.com"}, False),
    ("not-suffix", ["@example.com"], {"x": "bob@other.com"}, True),
    ("one-of-values-suffix", ["@a.io", "@b.io"], {"x": "x@a.io"}, False),
    ("number-for-string-op", ["3"], {"x": 123}, True),
    ("missing", ["@example.com"], MISSING, True),
    ("null", ["@example.com"], NULL, True),
)
def test_doesnt_end_with(values, attrs, expected):
    assert holds("DOESNT_END_WITH", values, attrs) is expected


@table(
    ("unanchored-search", ["b+"], {"x": "abbbc"}, True),
    ("anchored-no-match", ["^b"], {"x": "abc"}, False),
    ("anchored-match", ["^a.c$"], {"x": "abc"}, True),
    ("any-of-patterns", ["^z", "c$"], {"x": "abc"}, True),
    ("none-of-patterns", ["^z", "y$"], {"x": "abc"}, False),
    ("re2-unicode-class", [r"^\p{Greek}+$"], {"x": "αβγ"}, True),
    ("re2-case-insensitive-flag", ["(?i)beta"], {"x": "BETA"}, True),
    ("case-sensitive-by-default", ["beta"], {"x": "BETA"}, False),
    ("number-for-string-op", [r"\d+"], {"x": 123}, False),
    ("bool-for-string-op", ["true"], {"x": True}, False),
    ("lone-surrogate-is-not-text", ["."], {"x": "\ud800"}, False),
    ("missing", [".*"], MISSING, False),
    ("null", [".*"], NULL, False),
)
def test_matches_regex(values, attrs, expected):
    assert holds("MATCHES_REGEX", values, attrs) is expected


@table(
    ("matches", ["b+"], {"x": "abbbc"}, False),
    ("no-match", ["^b"], {"x": "abc"}, True),
    ("one-of-patterns-matches", ["^z", "c$"], {"x": "abc"}, False),
    ("none-of-patterns", ["^z", "y$"], {"x": "abc"}, True),
    ("number-for-string-op", [r"\d+"], {"x": 123}, True),
    ("missing", [".*"], MISSING, True),
    ("null", [".*"], NULL, True),
)
def test_doesnt_match_regex(values, attrs, expected):
    assert holds("DOESNT_MATCH_REGEX", values, attrs) is expected


# ---------------------------------------------------------------- segments

SEGMENTS = [
    segment("paying", [constraint("ONE_OF", ["pro", "enterprise"], "plan")]),
    segment("eu", [constraint("ONE_OF", ["eu"], "region")]),
]


@table(
    ("in-segment", ["paying"], {"plan": "pro"}, True),
    ("not-in-segment", ["paying"], {"plan": "free"}, False),
    ("in-all-listed", ["paying", "eu"], {"plan": "pro", "region": "eu"}, True),
    ("in-first-only", ["paying", "eu"], {"plan": "pro", "region": "us"}, False),
    ("in-second-only", ["paying", "eu"], {"plan": "free", "region": "eu"}, False),
    ("type-mismatch-inside-segment", ["paying"], {"plan": 1}, False),
    ("property-x-is-unused", ["paying"], {"x": "paying", "plan": "free"}, False),
    ("missing", ["paying"], MISSING, False),
    ("null", ["paying"], {"plan": None}, False),
)
def test_is_in_segment(values, attrs, expected):
    assert holds("IS_IN_SEGMENT", values, attrs, prop=None, segments=SEGMENTS) is expected


@table(
    ("in-segment", ["paying"], {"plan": "pro"}, False),
    ("not-in-segment", ["paying"], {"plan": "free"}, True),
    ("in-none-listed", ["paying", "eu"], {"plan": "free", "region": "us"}, True),
    ("in-first-only", ["paying", "eu"], {"plan": "pro", "region": "us"}, False),
    ("in-second-only", ["paying", "eu"], {"plan": "free", "region": "eu"}, False),
    ("in-both", ["paying", "eu"], {"plan": "pro", "region": "eu"}, False),
    ("missing", ["paying"], MISSING, True),
    ("null", ["paying"], {"plan": None}, True),
)
def test_isnt_in_segment(values, attrs, expected):
    assert holds("ISNT_IN_SEGMENT", values, attrs, prop=None, segments=SEGMENTS) is expected


def test_segment_operations_ignore_a_given_property():
    assert holds("IS_IN_SEGMENT", ["paying"], {"plan": "pro"}, prop="ignored", segments=SEGMENTS)


# ---------------------------------------------------------------- networks

NETWORKS = ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7", "fe80::1"]


@table(
    ("ipv4-inside", NETWORKS, {"x": "10.1.2.3"}, True),
    ("ipv4-network-edge", NETWORKS, {"x": "10.255.255.255"}, True),
    ("ipv4-outside", NETWORKS, {"x": "11.0.0.1"}, False),
    ("ipv6-inside", NETWORKS, {"x": "2001:db8::1"}, True),
    ("ipv6-outside", NETWORKS, {"x": "2001:db9::1"}, False),
    ("bare-ipv4-is-slash-32", NETWORKS, {"x": "192.168.1.7"}, True),
    ("bare-ipv4-neighbour", NETWORKS, {"x": "192.168.1.8"}, False),
    ("bare-ipv6-is-slash-128", NETWORKS, {"x": "fe80::1"}, True),
    ("bare-ipv6-neighbour", NETWORKS, {"x": "fe80::2"}, False),
    ("host-bits-set-in-cidr", ["10.1.2.3/8"], {"x": "10.200.0.1"}, True),
    ("not-an-address", NETWORKS, {"x": "not-an-ip"}, False),
    ("cidr-is-not-an-address", NETWORKS, {"x": "10.0.0.0/8"}, False),
    ("integer-address", NETWORKS, {"x": 167772161}, False),
    ("missing", NETWORKS, MISSING, False),
    ("null", NETWORKS, NULL, False),
)
def test_is_in_network(values, attrs, expected):
    assert holds("IS_IN_NETWORK", values, attrs) is expected


# ---------------------------------------------------------------- semantic versions (flagd's sem_ver)

# Reading: an optional v or V, a missing .MINOR / .PATCH is 0, build metadata is not compared.
NOT_VERSIONS = [
    ("not-a-version", {"x": "not-a-version"}),
    ("four-parts", {"x": "2.0.0.0"}),
    ("leading-zero", {"x": "02.0.0"}),
    ("spaces", {"x": " 2.0.0"}),
    ("x-range", {"x": "2.x"}),
    ("empty", {"x": ""}),
    ("v-alone", {"x": "v"}),
    ("integer", {"x": 2}),  # a number is no version: protobuf doubles would read 1.10 as 1.1
    ("float", {"x": 2.0}),
    ("bool", {"x": True}),
    ("missing", MISSING),
    ("null", NULL),
]


def not_versions(values):
    """Every operation gives false for each of NOT_VERSIONS, SEMVER_NOT_EQUAL too (as flagd's !=)."""
    return [(f"not-version-{case}", values, attrs, False) for case, attrs in NOT_VERSIONS]


@table(
    ("equal", ["2.0.0"], {"x": "2.0.0"}, True),
    ("v-prefix", ["2.0.0"], {"x": "v2.0.0"}, True),
    ("capital-v-prefix", ["v2.0.0"], {"x": "V2.0.0"}, True),
    ("partial-major", ["2.0.0"], {"x": "2"}, True),
    ("partial-minor", ["2"], {"x": "2.0"}, True),
    ("build-metadata-ignored", ["2.0.0+build.1"], {"x": "2.0.0+other"}, True),
    ("prerelease-differs", ["2.0.0"], {"x": "2.0.0-alpha"}, False),
    ("prerelease-equal", ["2.0.0-rc.1"], {"x": "2.0.0-rc.1"}, True),
    ("greater", ["2.0.0"], {"x": "2.1.0"}, False),
    ("any-value", ["1.0.0", "2.0.0"], {"x": "2.0.0"}, True),
    *not_versions(["2.0.0"]),
)
def test_semver_equal(values, attrs, expected):
    assert holds("SEMVER_EQUAL", values, attrs) is expected


@table(
    ("equal", ["2.0.0"], {"x": "2.0.0"}, False),
    ("differs", ["2.0.0"], {"x": "2.0.1"}, True),
    ("build-metadata-ignored", ["2.0.0"], {"x": "2.0.0+build"}, False),
    ("prerelease-differs", ["2.0.0"], {"x": "2.0.0-alpha"}, True),
    ("none-of-the-values", ["1.0.0", "2.0.0"], {"x": "3.0.0"}, True),
    ("one-of-the-values", ["1.0.0", "2.0.0"], {"x": "v1"}, False),
    *not_versions(["2.0.0"]),
)
def test_semver_not_equal(values, attrs, expected):
    assert holds("SEMVER_NOT_EQUAL", values, attrs) is expected


@table(
    ("lower", ["2.0.0"], {"x": "1.9.0"}, True),
    ("equal", ["2.0.0"], {"x": "2.0.0"}, False),
    ("greater", ["2.0.0"], {"x": "2.0.1"}, False),
    ("numeric-not-textual", ["1.10.0"], {"x": "1.9.0"}, True),
    ("prerelease-is-lower", ["2.0.0"], {"x": "2.0.0-alpha"}, True),
    ("prerelease-order", ["1.0.0-beta"], {"x": "1.0.0-alpha.1"}, True),
    ("numeric-prerelease-below-text", ["1.0.0-alpha"], {"x": "1.0.0-1"}, True),
    ("shorter-prerelease-is-lower", ["1.0.0-alpha.1"], {"x": "1.0.0-alpha"}, True),
    ("build-metadata-ignored", ["2.0.0+b"], {"x": "2.0.0+a"}, False),
    ("against-every-value", ["3.0.0", "2.0.0"], {"x": "2.5.0"}, False),
    ("below-every-value", ["3.0.0", "2.0.0"], {"x": "1.5.0"}, True),
    *not_versions(["2.0.0"]),
)
def test_semver_lower(values, attrs, expected):
    assert holds("SEMVER_LOWER", values, attrs) is expected


@table(
    ("lower", ["2.0.0"], {"x": "1.9.0"}, True),
    ("equal", ["2.0.0"], {"x": "2.0.0"}, True),
    ("equal-but-build", ["2.0.0"], {"x": "2.0.0+build"}, True),
    ("greater", ["2.0.0"], {"x": "2.0.1"}, False),
    ("prerelease-of-it", ["2.0.0"], {"x": "2.0.0-rc.1"}, True),
    *not_versions(["2.0.0"]),
)
def test_semver_lower_or_equal(values, attrs, expected):
    assert holds("SEMVER_LOWER_OR_EQUAL", values, attrs) is expected


@table(
    ("greater", ["2.0.0"], {"x": "2.1.0"}, True),
    ("equal", ["2.0.0"], {"x": "2.0.0"}, False),
    ("lower", ["2.0.0"], {"x": "1.99.99"}, False),
    ("release-above-its-prerelease", ["2.0.0-alpha"], {"x": "2.0.0"}, True),
    ("prerelease-order", ["1.0.0-alpha.beta"], {"x": "1.0.0-beta"}, True),
    ("numeric-prerelease-identifiers", ["1.0.0-rc.2"], {"x": "1.0.0-rc.10"}, True),
    ("big-numbers", ["1.0.0"], {"x": "18446744073709551617.0.0"}, True),
    ("against-every-value", ["1.0.0", "3.0.0"], {"x": "2.0.0"}, False),
    *not_versions(["2.0.0"]),
)
def test_semver_greater(values, attrs, expected):
    assert holds("SEMVER_GREATER", values, attrs) is expected


@table(
    ("greater", ["2.0.0"], {"x": "2.1.0"}, True),
    ("equal", ["2.0.0"], {"x": "v2"}, True),
    ("lower", ["2.0.0"], {"x": "1.9.0"}, False),
    ("prerelease-is-lower", ["2.0.0"], {"x": "2.0.0-alpha"}, False),
    *not_versions(["2.0.0"]),
)
def test_semver_greater_or_equal(values, attrs, expected):
    assert holds("SEMVER_GREATER_OR_EQUAL", values, attrs) is expected


@table(
    ("same-major", ["3.0.0"], {"x": "3.1.0"}, True),
    ("same-major-minor-given", ["3.5"], {"x": "3.0.1"}, True),
    ("other-major", ["3.0.0"], {"x": "4.0.0"}, False),
    ("prerelease-same-major", ["3.0.0"], {"x": "3.0.0-alpha"}, True),
    ("major-zero-too", ["0.1.0"], {"x": "0.9.0"}, True),  # flagd's ^ is the major alone, unlike npm's
    ("any-value", ["1", "3"], {"x": "3.2.1"}, True),
    *not_versions(["3.0.0"]),
)
def test_semver_same_major(values, attrs, expected):
    assert holds("SEMVER_SAME_MAJOR", values, attrs) is expected


@table(
    ("same-minor", ["3.0.0"], {"x": "3.0.1"}, True),
    ("other-minor", ["3.0.0"], {"x": "3.1.0"}, False),
    ("other-major", ["3.0.0"], {"x": "4.0.0"}, False),
    ("prerelease-same-minor", ["3.0.5"], {"x": "3.0.0-rc.1+b"}, True),
    ("any-value", ["1.2", "3.0"], {"x": "1.2.9"}, True),
    *not_versions(["3.0.0"]),
)
def test_semver_same_minor(values, attrs, expected):
    assert holds("SEMVER_SAME_MINOR", values, attrs) is expected


# ---------------------------------------------------------------- negations

SAMPLE_VALUES = ["a", "ba", "ab", "", "A", 1, 1.0, 0, True, False, None, 2.5, "1"]
NEGATION_VALUES = {"EXISTS": None, "ONE_OF": ["a", 1, True], "MATCHES_REGEX": ["^a"]}
NEGATIONS = [
    (spec.complement, spec.name, NEGATION_VALUES.get(spec.complement, ["a"]))
    for spec in SPECS
    if spec.complement
]


def test_the_exact_negations():
    # SEMVER_NOT_EQUAL is not one: a value that is no version makes both it and SEMVER_EQUAL false.
    assert [negative for _, negative, _ in NEGATIONS] == [
        "NOT_ONE_OF",
        "DOESNT_EXIST",
        "DOESNT_CONTAIN",
        "DOESNT_START_WITH",
        "DOESNT_END_WITH",
        "DOESNT_MATCH_REGEX",
    ]


@pytest.mark.parametrize(("positive", "negative", "values"), NEGATIONS, ids=[n[1] for n in NEGATIONS])
def test_negations_are_exact_complements(positive, negative, values):
    for sample in SAMPLE_VALUES:
        attrs = {"x": sample}
        assert holds(positive, values, attrs) is not holds(negative, values, attrs), sample
    assert holds(positive, values, {}) is not holds(negative, values, {})


def test_re2_and_semver_are_loaded_only_when_a_flag_needs_them():
    """re2 costs an idle sidecar RSS, semver start-up time: flag sets that use no regex or version
    operation never import them."""
    script = (
        "import sys\n"
        "import sidecar.cli\n"
        "from sidecar.store import load_flag_file\n"
        f"load_flag_file({str(EXAMPLE_FLAGS)!r})\n"
        "assert 're2' not in sys.modules, 'loaded before a regex'\n"
        "from sidecar.engine.operators import compile_regex\n"
        "compile_regex(['^a'])\n"
        "assert 're2' in sys.modules\n"
        "assert 'semver' not in sys.modules, 'loaded before a version'\n"
        "from sidecar.engine.operators import compile_constraint\n"
        "compile_constraint('v', 'SEMVER_EQUAL', ['1.0.0'])\n"
        "assert 'semver' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
