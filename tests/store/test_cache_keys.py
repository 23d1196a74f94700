from sidecar.store import eval_cache_key, flag_cache_key, request_hash, segment_cache_key


def test_keys_are_namespaced():
    assert flag_cache_key("new-checkout") == "flag:new-checkout"
    assert segment_cache_key("beta") == "segment:beta"
    assert eval_cache_key("f", 3, 2, "abc") == "eval:f:3:2:abc"


def test_namespaces_never_collide():
    assert flag_cache_key("x") != segment_cache_key("x") != eval_cache_key("x")


def test_request_hash_ignores_key_order_and_sees_every_value():
    a = request_hash({"$userId": "u1", "plan": "pro", "age": 30})
    b = request_hash({"age": 30, "plan": "pro", "$userId": "u1"})
    assert a == b
    assert len(a) == 40
    assert request_hash({"$userId": "u2", "plan": "pro", "age": 30}) != a
    assert request_hash({"$userId": "u1", "plan": "pro", "age": 31}) != a
    assert request_hash({"$userId": "u1", "plan": "pro", "age": "30"}) != a
