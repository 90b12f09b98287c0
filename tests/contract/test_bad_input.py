"""Bad input: a 400 in the error envelope, never a 500, nothing written."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def metadata_path(session_id: str) -> str:
    return f"/sessions/{session_id}/metadata"


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'"text"', b"{", b"", b"NaN", b'{"a": NaN}'],
    ids=["text", "array", "string", "truncated", "empty", "nan", "nan-value"],
)
def test_bad_json_body_is_400(api, new_session, raw):
    for method in ("PATCH", "PUT"):
        session = new_session()
        reply = api.request(method, metadata_path(session), raw=raw)
        assert reply.status == 400, (method, raw, reply.body)
        assert reply.error_code == "invalid_request"
        assert api.get(metadata_path(session)).json["metadata"] == {}


def test_a_body_that_is_not_utf8_is_400(api, new_session):
    """API Gateway passes it base64-encoded (so does the local gateway); the handler
    refuses it."""
    reply = api.request("PATCH", metadata_path(new_session()), raw=b'{"a": "\xff\xfe"}')
    assert reply.status == 400
    assert reply.error_code == "invalid_request"


@pytest.mark.parametrize(
    "session",
    ["bad*id", "has%20space", "x" * 129, "semi%3Bcolon", "slash%2Fin"],
    ids=["star", "space", "too-long", "semicolon", "encoded-slash"],
)
def test_invalid_session_id_is_400(api, session):
    for method, body in (("GET", None), ("PATCH", {"a": 1}), ("DELETE", None)):
        reply = api.request(method, metadata_path(session), body)
        assert reply.status == 400, (method, session)
        assert reply.error_code == "invalid_request"
    reply = api.delete(f"/sessions/{session}")
    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    reply = api.post(f"/sessions/{session}/tokens", {"function_name": "lookup"})
    assert reply.status == 400
    assert reply.error_code == "invalid_request"


def test_invalid_token_requests_are_400(api, new_session):
    for body in (
        {},
        {"function_name": "1starts_with_a_digit"},
        {"function_name": "has-dash"},
        {"function_name": 7},
    ):
        reply = api.post(f"/sessions/{new_session()}/tokens", body)
        assert reply.status == 400, body
        assert reply.error_code == "invalid_request"
    for body in (
        {"call_id": "c1", "function_name": "lookup"},
        {"token": "abc", "function_name": "lookup"},
        {"token": "abc", "call_id": "bad*id", "function_name": "lookup"},
        {"token": "abc", "call_id": "c1", "function_name": "bad name"},
    ):
        reply = api.post("/tokens/validate", body)
        assert reply.status == 400, body
        assert reply.error_code == "invalid_request"


def test_metadata_too_large_is_413(api, new_session):
    session = new_session()
    reply = api.patch(metadata_path(session), {"blob": "x" * 500_000})
    assert reply.status == 413
    assert reply.error_code == "payload_too_large"
    assert api.get(metadata_path(session)).json["metadata"] == {}
