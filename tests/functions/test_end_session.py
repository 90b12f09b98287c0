"""DELETE /sessions/{session_id} through delete_metadata, both payload formats, and the
token lifecycle modes (TOKEN_REVOCATION, SINGLE_USE_TOKENS) through the real handlers:
what a validation answers in each mode, and what it costs in AWS calls."""

from __future__ import annotations

import pytest
from lambda_harness import FAR_FUTURE, assert_error

from session_manager import tokens

END_ROUTE = "/sessions/{session_id}"


@pytest.fixture
def modes(monkeypatch):
    """`modes(revocation=..., single_use=...)`: the template's variables, set before the
    functions are imported (each reads its configuration at INIT)."""

    def set_modes(revocation: str = "false", single_use: str = "false") -> None:
        monkeypatch.setenv("TOKEN_REVOCATION", revocation)
        monkeypatch.setenv("SINGLE_USE_TOKENS", single_use)

    return set_modes


def end(delete_metadata, session_id: str):
    return delete_metadata("DELETE", session_id=session_id, route=END_ROUTE)


def validate(validate_token, token: str, call_id: str = "call-1", function: str = "get_weather"):
    body = {"token": token, "call_id": call_id, "function_name": function}
    response = validate_token("POST", body)
    assert response.status == 200, response.body
    return response.body


# -- the route --------------------------------------------------------------------------------


def test_ending_a_session_answers_ended_and_deletes_its_metadata(
    delete_metadata, set_metadata, get_metadata
):
    set_metadata("PATCH", {"step": "confirm"}, session_id="call-1")
    response = end(delete_metadata, "call-1")
    assert response.status == 200
    assert response.body == {"session_id": "call-1", "ended": True}
    assert get_metadata(session_id="call-1").body["metadata"] == {}


def test_ending_an_unknown_session_is_still_ended(delete_metadata):
    assert end(delete_metadata, "never-seen").body == {"session_id": "never-seen", "ended": True}


def test_the_metadata_route_still_answers_deleted(delete_metadata, set_metadata):
    set_metadata("PATCH", {"step": "confirm"}, session_id="call-1")
    response = delete_metadata(session_id="call-1")
    assert response.body == {"session_id": "call-1", "deleted": True}


def test_a_session_named_metadata_is_ended_not_mistaken_for_the_metadata_route(
    delete_metadata,
):
    assert end(delete_metadata, "metadata").body == {"session_id": "metadata", "ended": True}


def test_an_invalid_session_id_on_the_end_route_is_400(delete_metadata):
    for bad in ("a b", "s" * 129, "a:b"):
        assert_error(end(delete_metadata, bad), 400, "invalid_request")


def test_other_methods_on_the_end_route_are_405(delete_metadata):
    response = delete_metadata("GET", session_id="call-1", route=END_ROUTE)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "DELETE"


# -- revocation -------------------------------------------------------------------------------


def test_with_revocation_an_ended_calls_tokens_are_refused_as_revoked(
    modes, load_function, signing_key
):
    modes(revocation="true")
    delete_metadata, validate_token = (
        load_function("delete_metadata"),
        load_function("validate_token"),
    )
    mine = tokens.mint(signing_key.encode(), "call-1", "get_weather", FAR_FUTURE)
    other = tokens.mint(signing_key.encode(), "call-2", "get_weather", FAR_FUTURE)
    assert validate(validate_token, mine) == {"valid": True}

    assert end(delete_metadata, "call-1").body == {"session_id": "call-1", "ended": True}

    assert validate(validate_token, mine) == {"valid": False, "reason": "revoked"}
    assert validate(validate_token, other, call_id="call-2") == {"valid": True}
    # Claims are still checked first: an expired token is expired, not revoked.
    expired = tokens.mint(signing_key.encode(), "call-1", "get_weather", 1_000_000_000)
    assert validate(validate_token, expired)["reason"] == "expired"


def test_without_revocation_an_ended_calls_tokens_stay_valid(modes, load_function, signing_key):
    modes(revocation="false")
    delete_metadata, validate_token = (
        load_function("delete_metadata"),
        load_function("validate_token"),
    )
    token = tokens.mint(signing_key.encode(), "call-1", "get_weather", FAR_FUTURE)
    end(delete_metadata, "call-1")
    assert validate(validate_token, token) == {"valid": True}


# -- single use -------------------------------------------------------------------------------


def test_single_use_a_second_validation_is_refused_as_replayed(modes, load_function, signing_key):
    modes(single_use="true")
    validate_token = load_function("validate_token")
    token = tokens.mint(signing_key.encode(), "call-1", "get_weather", FAR_FUTURE)
    assert validate(validate_token, token) == {"valid": True}
    assert validate(validate_token, token) == {"valid": False, "reason": "replayed"}


def test_single_use_for_listed_functions_only(modes, load_function, signing_key):
    modes(single_use="transfer_call,refund")
    validate_token = load_function("validate_token")
    key = signing_key.encode()
    refund = tokens.mint(key, "call-1", "refund", FAR_FUTURE)
    weather = tokens.mint(key, "call-1", "get_weather", FAR_FUTURE)
    assert validate(validate_token, refund, function="refund") == {"valid": True}
    assert validate(validate_token, refund, function="refund")["reason"] == "replayed"
    assert validate(validate_token, weather) == {"valid": True}
    assert validate(validate_token, weather) == {"valid": True}


# -- AWS calls per validation, in each mode -----------------------------------------------------

CALLS_PER_VALIDATION = {
    ("false", "false"): {},
    ("true", "false"): {"GetItem": 1},
    ("false", "true"): {"PutItem": 1},
    ("true", "true"): {"GetItem": 1, "PutItem": 1},
}


@pytest.mark.parametrize(("revocation", "single_use"), list(CALLS_PER_VALIDATION))
def test_aws_calls_per_warm_validation(
    modes, import_function, aws_calls, signing_key, revocation, single_use
):
    modes(revocation, single_use)
    validate_token = import_function("validate_token")
    key = signing_key.encode()
    validate(validate_token, tokens.mint(key, "call-1", "get_weather", FAR_FUTURE))  # cold
    aws_calls.clear()
    validate(validate_token, tokens.mint(key, "call-1", "get_weather", FAR_FUTURE))  # warm
    assert aws_calls == CALLS_PER_VALIDATION[(revocation, single_use)]

    # Refused on its claims or its signature: no ledger call in any mode.
    aws_calls.clear()
    expired = tokens.mint(key, "call-1", "get_weather", 1_000_000_000)
    assert validate(validate_token, expired)["reason"] == "expired"
    wrong_function = tokens.mint(key, "call-1", "transfer", FAR_FUTURE)
    assert validate(validate_token, wrong_function)["reason"] == "wrong_function"
    assert aws_calls == {}


@pytest.mark.parametrize(
    ("revocation", "calls"),
    [("false", {"DeleteItem": 1}), ("true", {"PutItem": 1, "DeleteItem": 1})],
)
def test_aws_calls_to_end_a_session(modes, import_function, aws_calls, revocation, calls):
    modes(revocation)
    delete_metadata = import_function("delete_metadata")
    end(delete_metadata, "call-1")
    assert aws_calls == calls
