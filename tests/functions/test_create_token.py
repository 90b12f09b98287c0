"""POST /sessions/{session_id}/tokens through the create_token handler, both formats: a
tool token for one function in one call, in the SignalWire SDK's format."""

from __future__ import annotations

import time

from lambda_harness import assert_error

from session_manager import tokens


def test_creates_a_token_that_validates(create_token, validate_token):
    response = create_token(body={"function_name": "get_weather"}, session_id="call-1")

    assert response.status == 201
    assert set(response.body) == {"token", "call_id", "function_name", "expires_at"}
    assert response.body["call_id"] == "call-1"
    assert response.body["function_name"] == "get_weather"

    check = validate_token(
        body={"token": response.body["token"], "call_id": "call-1", "function_name": "get_weather"}
    )
    assert check.status == 200
    assert check.body == {"valid": True}


def test_the_token_carries_what_the_response_says(create_token, env):
    before = int(time.time())
    response = create_token(body={"function_name": "get_weather"}, session_id="root.2")
    after = int(time.time())

    body = response.body
    parsed = tokens.parse(body["token"])
    assert parsed is not None
    assert (parsed.call_id, parsed.function_name) == ("root.2", "get_weather")
    assert parsed.expiry == body["expires_at"]
    assert isinstance(body["expires_at"], int)
    lifetime = int(env["TOKEN_EXPIRY_SECS"])  # the template's default: the contract's 900
    assert before + lifetime <= body["expires_at"] <= after + lifetime


def test_token_lifetime_follows_token_expiry_secs(load_function, monkeypatch):
    monkeypatch.setenv("TOKEN_EXPIRY_SECS", "60")
    create_token = load_function("create_token")  # read at import, as in Lambda
    before = int(time.time())
    expires_at = create_token(body={"function_name": "f"}).body["expires_at"]
    assert before + 60 <= expires_at <= int(time.time()) + 60


def test_each_token_is_new(create_token):
    first = create_token(body={"function_name": "get_weather"}).body["token"]
    second = create_token(body={"function_name": "get_weather"}).body["token"]
    assert first != second  # a fresh nonce each time


def test_function_names_at_the_limits_of_the_contract_are_accepted(create_token):
    for name in ("f", "_private", "A" + "b" * 63, "get_weather_2"):
        response = create_token(body={"function_name": name})
        assert response.status == 201, (name, response.body)
        assert response.body["function_name"] == name


def test_an_invalid_function_name_is_400(create_token):
    for name in ("x:y", "1abc", "a" * 65, "a.b", "a-b", "a b", "", "caf\u00e9"):
        response = create_token(body={"function_name": name})
        assert response.status == 400, (name, response.body)
        assert_error(response, 400, "invalid_request")


def test_a_missing_or_mistyped_function_name_is_400(create_token):
    for body in (
        {},
        {"function_name": 5},
        {"function_name": None},
        {"function_name": ["f"]},
        {"name": "get_weather"},
    ):
        response = create_token(body=body)
        assert response.status == 400, (body, response.body)
        assert_error(response, 400, "invalid_request")
