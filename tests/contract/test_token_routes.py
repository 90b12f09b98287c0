"""Tokens over HTTP: minted and validated by the API, and wire-compatible both ways with
the SignalWire SDK's SessionManager holding the same key."""

from __future__ import annotations

import time

import pytest
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager

pytestmark = pytest.mark.slow


def mint(api, call_id: str, function_name: str = "lookup_order") -> dict:
    reply = api.post(f"/sessions/{call_id}/tokens", {"function_name": function_name})
    assert reply.status == 201, reply.body
    return reply.json


def validate(api, token: str, call_id: str, function_name: str = "lookup_order") -> dict:
    body = {"token": token, "call_id": call_id, "function_name": function_name}
    reply = api.post("/tokens/validate", body)
    assert reply.status == 200, reply.body
    return reply.json


def test_token_created_then_validated(api, new_session):
    call_id = new_session()
    before = int(time.time())
    created = mint(api, call_id)
    assert set(created) == {"token", "call_id", "function_name", "expires_at"}
    assert created["call_id"] == call_id
    assert created["function_name"] == "lookup_order"
    if api.local:  # the template's TokenExpirySecs default (900) reached the handler
        assert before + 900 <= created["expires_at"] <= int(time.time()) + 900
    else:
        assert created["expires_at"] > before
    assert validate(api, created["token"], call_id) == {"valid": True}


def test_token_for_another_call_or_function_is_refused_with_a_reason(api, new_session):
    call_id = new_session()
    token = mint(api, call_id, "lookup")["token"]
    for call, function, reason in (
        (new_session(), "lookup", "wrong_call"),
        (call_id, "transfer", "wrong_function"),
    ):
        assert validate(api, token, call, function) == {"valid": False, "reason": reason}


def test_call_ids_with_dots_sign_and_validate(api, new_session):
    call_id = new_session(suffix=".2")
    token = mint(api, call_id, "f")["token"]
    assert validate(api, token, call_id, "f") == {"valid": True}


def test_garbage_token_is_refused_not_an_error(api):
    body = validate(api, "not-a-token", "c1", "f")
    assert body == {"valid": False, "reason": "malformed"}


def test_a_token_minted_by_the_api_validates_in_the_sdk(api, new_session, signing_key):
    call_id = new_session()
    token = mint(api, call_id, "get_weather")["token"]
    sdk = SdkSessionManager(secret_key=signing_key)
    assert sdk.validate_tool_token("get_weather", token, call_id) is True
    assert sdk.validate_tool_token("get_weather", token, new_session()) is False


def test_a_token_minted_by_the_sdk_validates_in_the_api(api, new_session, signing_key):
    call_id = new_session()
    token = SdkSessionManager(secret_key=signing_key).create_tool_token("get_weather", call_id)
    assert validate(api, token, call_id, "get_weather") == {"valid": True}
    forged = SdkSessionManager(secret_key="another-key-" + "k" * 32).create_tool_token(
        "get_weather", call_id
    )
    assert validate(api, forged, call_id, "get_weather") == {
        "valid": False,
        "reason": "bad_signature",
    }
