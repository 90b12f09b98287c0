"""The contract's HTTP API, over real HTTP, against the local API (embedded moto).

The server runs the real handlers in this process (conftest.py's `local_api`); these tests
only speak HTTP to it, as a SignalWire agent or curl would.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import pytest
from local_http import SIGNING_KEY, TIMEOUT_SECS, token_signed_with

from devtools import template

pytestmark = pytest.mark.slow


def new_session() -> str:
    return f"call-{uuid.uuid4().hex[:12]}"


def metadata_path(session_id: str) -> str:
    return f"/sessions/{session_id}/metadata"


# -- routing: the template's routes, 404 and 405 ------------------------------------------


def test_every_template_route_reaches_its_function(client):
    """Each route of template.yaml is served: the answer comes from a function (the
    gateway adds API Gateway's request id), not a routing error."""
    routes = [route for function in template.functions() for route in function.routes]
    assert len(routes) >= 6
    for route in routes:
        path = route.path.replace("{session_id}", new_session())
        reply = client.request(route.method, path)
        assert reply.headers.get("apigw-requestid"), route
        assert reply.status not in (404, 405), (route, reply.body)


def test_unknown_route_is_404_in_the_error_envelope(client):
    for path in ("/nope", "/sessions", "/sessions//metadata", "/sessions/s1/metadata/x"):
        reply = client.get(path)
        assert reply.status == 404, path
        assert reply.error_code == "not_found"
        assert reply.headers.get("Content-Type") == "application/json"


def test_wrong_method_is_405_with_allow_in_the_error_envelope(client):
    reply = client.post(metadata_path("s1"), {"a": 1})
    assert reply.status == 405
    assert reply.error_code == "method_not_allowed"
    assert {m.strip() for m in reply.headers["Allow"].split(",")} == {
        "GET",
        "PATCH",
        "PUT",
        "DELETE",
    }

    reply = client.get("/tokens/validate")
    assert reply.status == 405
    assert reply.error_code == "method_not_allowed"
    assert reply.headers["Allow"] == "POST"


# -- metadata ----------------------------------------------------------------------------


def test_unknown_session_reads_as_empty_metadata(client):
    session = new_session()
    reply = client.get(metadata_path(session))
    assert reply.status == 200
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.json == {"session_id": session, "metadata": {}}


def test_patch_merges_shallowly_and_null_removes_a_key(client):
    session = new_session()
    first = {"step": 1, "score": 2.5, "caller": {"name": "Ada", "tags": ["vip", 7]}}
    reply = client.patch(metadata_path(session), first)
    assert reply.status == 200
    assert reply.json == {"session_id": session, "metadata": first}

    reply = client.patch(metadata_path(session), {"score": None, "step": 2, "lang": "fr"})
    merged = {"step": 2, "caller": {"name": "Ada", "tags": ["vip", 7]}, "lang": "fr"}
    assert reply.status == 200
    assert reply.json == {"session_id": session, "metadata": merged}

    stored = client.get(metadata_path(session)).json["metadata"]
    assert stored == merged
    # JSON round trip: an integer stays an integer, a float a float.
    assert type(stored["step"]) is int
    client.patch(metadata_path(session), {"ratio": 0.5})
    assert type(client.get(metadata_path(session)).json["metadata"]["ratio"]) is float


def test_patch_replaces_nested_objects_whole(client):
    session = new_session()
    client.patch(metadata_path(session), {"caller": {"name": "Ada", "vip": True}})
    reply = client.patch(metadata_path(session), {"caller": {"name": "Grace"}})
    assert reply.json["metadata"] == {"caller": {"name": "Grace"}}


def test_put_replaces_the_metadata(client):
    session = new_session()
    client.patch(metadata_path(session), {"a": 1, "b": 2})
    reply = client.put(metadata_path(session), {"c": 3})
    assert reply.status == 200
    assert reply.json == {"session_id": session, "metadata": {"c": 3}}
    assert client.get(metadata_path(session)).json["metadata"] == {"c": 3}


def test_delete_reports_whether_a_session_existed(client):
    session = new_session()
    client.patch(metadata_path(session), {"a": 1})

    reply = client.delete(metadata_path(session))
    assert reply.status == 200
    assert reply.json == {"session_id": session, "deleted": True}
    assert client.get(metadata_path(session)).json["metadata"] == {}

    again = client.delete(metadata_path(session))
    assert again.status == 200
    assert again.json == {"session_id": session, "deleted": False}


def test_unicode_metadata_round_trips(client):
    session = new_session()
    value = {"name": "Zoë", "greeting": "こんにちは", "emoji": "🚀"}
    assert client.patch(metadata_path(session), value).json["metadata"] == value
    assert client.get(metadata_path(session)).json["metadata"] == value


def test_session_ids_with_every_allowed_character(client):
    session = "Aa0._-" + "x" * 122  # 128 characters, the longest allowed
    reply = client.patch(metadata_path(session), {"ok": True})
    assert reply.status == 200
    assert reply.json["session_id"] == session


# -- bad input: 400 in the envelope, never a 500 -------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'"text"', b"{", b"", b"NaN", b'{"a": NaN}'],
    ids=["text", "array", "string", "truncated", "empty", "nan", "nan-value"],
)
def test_bad_json_body_is_400(client, raw):
    for method in ("PATCH", "PUT"):
        reply = client.request(method, metadata_path(new_session()), raw=raw)
        assert reply.status == 400, (method, raw, reply.body)
        assert reply.error_code == "invalid_request"


def test_a_body_that_is_not_utf8_is_400(client):
    """The gateway passes it base64-encoded, as API Gateway does; the handler refuses it."""
    reply = client.request("PATCH", metadata_path(new_session()), raw=b'{"a": "\xff\xfe"}')
    assert reply.status == 400
    assert reply.error_code == "invalid_request"


@pytest.mark.parametrize(
    "session",
    ["bad*id", "has%20space", "x" * 129, "semi%3Bcolon", "slash%2Fin"],
    ids=["star", "space", "too-long", "semicolon", "encoded-slash"],
)
def test_invalid_session_id_is_400(client, session):
    for method, body in (("GET", None), ("PATCH", {"a": 1}), ("DELETE", None)):
        reply = client.request(method, metadata_path(session), body)
        assert reply.status == 400, (method, session)
        assert reply.error_code == "invalid_request"
    reply = client.post(f"/sessions/{session}/tokens", {"function_name": "lookup"})
    assert reply.status == 400
    assert reply.error_code == "invalid_request"


def test_invalid_token_requests_are_400(client):
    for body in (
        {},
        {"function_name": "1starts_with_a_digit"},
        {"function_name": "has-dash"},
        {"function_name": 7},
    ):
        reply = client.post(f"/sessions/{new_session()}/tokens", body)
        assert reply.status == 400, body
        assert reply.error_code == "invalid_request"
    for body in (
        {"call_id": "c1", "function_name": "lookup"},
        {"token": "abc", "function_name": "lookup"},
        {"token": "abc", "call_id": "bad*id", "function_name": "lookup"},
        {"token": "abc", "call_id": "c1", "function_name": "bad name"},
    ):
        reply = client.post("/tokens/validate", body)
        assert reply.status == 400, body
        assert reply.error_code == "invalid_request"


# -- tokens ------------------------------------------------------------------------------


def test_token_created_then_validated(client):
    call_id = new_session()
    before = int(time.time())
    reply = client.post(f"/sessions/{call_id}/tokens", {"function_name": "lookup_order"})
    assert reply.status == 201
    created = reply.json
    assert set(created) == {"token", "call_id", "function_name", "expires_at"}
    assert created["call_id"] == call_id
    assert created["function_name"] == "lookup_order"
    # The template's TokenExpirySecs default (900) reached the handler's environment.
    assert before + 900 <= created["expires_at"] <= int(time.time()) + 900
    # Signed with the key the local secret was seeded with.
    assert token_signed_with(created["token"], SIGNING_KEY)

    reply = client.post(
        "/tokens/validate",
        {"token": created["token"], "call_id": call_id, "function_name": "lookup_order"},
    )
    assert reply.status == 200
    assert reply.json == {"valid": True}


def test_token_for_another_call_or_function_is_refused_with_a_reason(client):
    call_id = new_session()
    token = client.post(f"/sessions/{call_id}/tokens", {"function_name": "lookup"}).json["token"]

    for call, function in ((new_session(), "lookup"), (call_id, "transfer")):
        reply = client.post(
            "/tokens/validate", {"token": token, "call_id": call, "function_name": function}
        )
        assert reply.status == 200
        body = reply.json
        assert body["valid"] is False
        assert set(body) == {"valid", "reason"}
        assert isinstance(body["reason"], str) and body["reason"]


def test_call_ids_with_dots_sign_and_validate(client):
    call_id = "root.2"
    token = client.post(f"/sessions/{call_id}/tokens", {"function_name": "f"}).json["token"]
    reply = client.post(
        "/tokens/validate", {"token": token, "call_id": call_id, "function_name": "f"}
    )
    assert reply.json == {"valid": True}


def test_garbage_token_is_refused_not_an_error(client):
    reply = client.post(
        "/tokens/validate", {"token": "not-a-token", "call_id": "c1", "function_name": "f"}
    )
    assert reply.status == 200
    assert reply.json["valid"] is False


# -- concurrency ---------------------------------------------------------------------------


def test_eight_concurrent_merges_into_one_new_session_keep_every_key(client):
    """8 threads released together by a barrier, each merging its own key into the same
    session, which none of them has created yet: no write may be lost. Three rounds, each
    on a fresh session, as a lost write depends on how the threads happen to interleave."""
    workers = 8
    # Switch threads every few microseconds instead of every 5 ms, so the requests really
    # interleave inside the backend: a lost write shows up here, not once in many runs.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for _ in range(3):
            session = new_session()
            statuses = merge_concurrently(client, session, workers)
            assert statuses == dict.fromkeys(range(workers), 200)
            metadata = client.get(metadata_path(session)).json["metadata"]
            assert metadata == {f"key{i}": i for i in range(workers)}
    finally:
        sys.setswitchinterval(interval)


def merge_concurrently(client, session: str, workers: int) -> dict[int, int]:
    """Each worker PATCHes {"key<i>": i} into `session` once; returns the statuses."""
    barrier = threading.Barrier(workers, timeout=TIMEOUT_SECS)
    statuses: dict[int, int] = {}
    errors: list[BaseException] = []

    def merge(index: int) -> None:
        try:
            barrier.wait()
            statuses[index] = client.patch(metadata_path(session), {f"key{index}": index}).status
        except BaseException as error:  # reported by the assertions below
            errors.append(error)

    threads = [threading.Thread(target=merge, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_SECS * 3)
    assert not any(thread.is_alive() for thread in threads), "a merge did not finish"
    assert not errors, errors
    return statuses
