"""Bucketing golden vectors (DESIGN.md, "Evaluation semantics" 6).

bucket = (murmur3_x86_32("<flag key>:<bucket value>", seed 0, unsigned) * 10000) >> 32.
The literal numbers below pin the formula: if any of them changes, every user in every split moves.
"""

import mmh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.engine import bucket, bucket_text


def formula(flag_key, text):
    h = mmh3.hash(f"{flag_key}:{text}".encode(), 0, signed=False)
    return (h * 10000) >> 32


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """A from-scratch MurmurHash3 x86 32-bit, as a client in another language would write it."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & mask

    h = seed
    blocks = len(data) // 4
    for i in range(blocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = rotl((k * c1) & mask, 15)
        h ^= (k * c2) & mask
        h = (rotl(h, 13) * 5 + 0xE6546B64) & mask
    tail = data[4 * blocks :]
    k = 0
    for i, byte in enumerate(tail):
        k |= byte << (8 * i)
    if tail:
        k = rotl((k * c1) & mask, 15)
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


# Published MurmurHash3_x86_32 vectors (seed 0): the hash itself, before bucketing.
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", 0, id="empty"),
        pytest.param(b"hello", 0x248BFA47, id="hello"),
        pytest.param(b"The quick brown fox jumps over the lazy dog", 0x2E4FF723, id="fox"),
    ],
)
def test_murmur3_reference_vectors(data, expected):
    assert mmh3.hash(data, 0, signed=False) == expected
    assert murmur3_x86_32(data) == expected


# Literal buckets: (flag key, bucket value text, unsigned hash, bucket).
GOLDEN = [
    ("new-checkout", "user-1", 2230340631, 5192),
    ("new-checkout", "user-2", 992310789, 2310),
    ("banner-color", "alice", 1834396613, 4271),
    ("banner-color", "42", 1986481648, 4625),
    ("f", "true", 584711829, 1361),
    ("max-upload-mb", "0", 97804828, 227),
    ("new-checkout", "ünïcødé-👍", 3983980315, 9275),
]


@pytest.mark.parametrize(("flag_key", "text", "hash_value", "expected"), GOLDEN, ids=[g[1] for g in GOLDEN])
def test_golden_buckets(flag_key, text, hash_value, expected):
    data = f"{flag_key}:{text}".encode()
    assert mmh3.hash(data, 0, signed=False) == hash_value
    assert murmur3_x86_32(data) == hash_value
    assert formula(flag_key, text) == expected
    assert bucket(flag_key, text) == expected


@settings(max_examples=200, deadline=None)
@given(flag_key=st.text(min_size=1, max_size=30), text=st.text(max_size=40))
def test_engine_bucket_matches_the_documented_formula(flag_key, text):
    position = bucket(flag_key, text)
    assert 0 <= position < 10000
    assert position == formula(flag_key, text)
    assert position == (murmur3_x86_32(f"{flag_key}:{text}".encode()) * 10000) >> 32


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("abc", "abc", id="string"),
        pytest.param("", "", id="empty-string"),
        pytest.param(42, "42", id="int"),
        pytest.param(-3, "-3", id="negative-int"),
        pytest.param(42.0, "42", id="whole-float"),
        pytest.param(-0.0, "0", id="negative-zero"),
        pytest.param(0.5, "0.5", id="fraction"),
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param(None, None, id="null"),
        pytest.param([1], None, id="list"),
        pytest.param({"a": 1}, None, id="dict"),
        pytest.param(10**5000, None, id="int-too-long-to-print"),
    ],
)
def test_bucket_text(value, text):
    assert bucket_text(value) == text


def test_lone_surrogate_buckets_without_error():
    assert 0 <= bucket("f", "\ud800") < 10000
