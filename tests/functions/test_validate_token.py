"""POST /tokens/validate through the validate_token handler, both formats.

A refused token is an answer, 200 {"valid": false, "reason": code}, with the codes of
session_manager.tokens; a request that cannot be read is a 400.
"""

from __future__ import annotations

import time

import pytest
from lambda_harness import FAR_FUTURE, assert_error

from session_manager import tokens


@pytest.fixture
def mint(signing_key):
    """`mint(call_id, function_name, expiry=FAR_FUTURE, key=the secret's key)`."""

    def make(call_id: str, function_name: str, expiry: int = FAR_FUTURE, key: str = signing_key):
        return tokens.mint(key.encode(), call_id, function_name, expiry)

    return make


def check(validate_token, token: str, call_id: str = "call-1", function_name: str = "get_weather"):
    return validate_token(body={"token": token, "call_id": call_id, "function_name": function_name})


def test_a_token_signed_with_the_secret_is_valid(validate_token, mint):
    response = check(validate_token, mint("call-1", "get_weather"))
    assert response.status == 200
    assert response.body == {"valid": True}


def test_unpadded_tokens_and_dotted_call_ids_are_valid(validate_token, mint):
    """As the contract says (the TypeScript SDK drops the padding; call ids like root.2)."""
    token = mint("root.2", "get_weather").rstrip("=")
    assert check(validate_token, token, call_id="root.2").body == {"valid": True}


def refusals(mint) -> dict[str, tuple[str, str, str]]:
    """reason -> (token, call_id, function_name) that earns it."""
    return {
        tokens.Refusal.MALFORMED: ("not-a-token", "call-1", "get_weather"),
        tokens.Refusal.WRONG_FUNCTION: (mint("call-1", "get_weather"), "call-1", "transfer_funds"),
        tokens.Refusal.WRONG_CALL: (mint("call-1", "get_weather"), "call-2", "get_weather"),
        tokens.Refusal.EXPIRED: (
            mint("call-1", "get_weather", int(time.time()) - 1),
            "call-1",
            "get_weather",
        ),
        tokens.Refusal.BAD_SIGNATURE: (
            mint("call-1", "get_weather", key="z" * 40),
            "call-1",
            "get_weather",
        ),
    }


REASONS = [
    tokens.Refusal.MALFORMED,
    tokens.Refusal.WRONG_FUNCTION,
    tokens.Refusal.WRONG_CALL,
    tokens.Refusal.EXPIRED,
    tokens.Refusal.BAD_SIGNATURE,
]


@pytest.mark.parametrize("reason", REASONS)
def test_a_refused_token_is_200_with_its_reason(validate_token, mint, reason):
    token, call_id, function_name = refusals(mint)[reason]
    response = check(validate_token, token, call_id, function_name)
    assert response.status == 200
    assert response.body == {"valid": False, "reason": reason}


def test_more_malformed_tokens(validate_token, mint):
    good = mint("call-1", "get_weather")
    for token in (
        "x" * (tokens.MAX_TOKEN_CHARS + 1),
        good[:-8],  # truncated
        good + "!",
        good.replace("-", "+").replace("_", "/") + "@",
        "Zm9v",  # base64 of "foo"
    ):
        response = check(validate_token, token)
        assert response.body == {"valid": False, "reason": tokens.Refusal.MALFORMED}, token[:40]


def test_a_missing_call_id_is_400_not_a_refusal(validate_token, mint):
    """Refusal.MISSING_CALL_ID cannot come back over HTTP: the call id is a required field."""
    response = validate_token(body={"token": mint("call-1", "f"), "function_name": "f"})
    assert_error(response, 400, "invalid_request")


def test_missing_or_mistyped_fields_are_400(validate_token, mint):
    token = mint("call-1", "get_weather")
    good = {"token": token, "call_id": "call-1", "function_name": "get_weather"}
    bodies = [
        {},
        *({k: v for k, v in good.items() if k != missing} for missing in good),
        *({**good, field: value} for field in good for value in (5, None, "", ["x"], {})),
        {**good, "call_id": "a b"},
        {**good, "call_id": "c" * 129},
        {**good, "function_name": "x:y"},
        {**good, "function_name": "1abc"},
        {**good, "function_name": "a" * 65},
    ]
    for body in bodies:
        response = validate_token(body=body)
        assert response.status == 400, (body, response.body)
        assert_error(response, 400, "invalid_request")


def test_tokens_refused_on_their_claims_cost_no_aws_call(validate_token, mint, aws_calls):
    """Expired, misdirected and malformed tokens are refused before any key is fetched,
    even cold: a flood of them cannot become a flood of Secrets Manager calls."""
    for reason in (
        tokens.Refusal.MALFORMED,
        tokens.Refusal.WRONG_FUNCTION,
        tokens.Refusal.WRONG_CALL,
        tokens.Refusal.EXPIRED,
    ):
        token, call_id, function_name = refusals(mint)[reason]
        assert check(validate_token, token, call_id, function_name).body["reason"] == reason
    assert aws_calls == {}


@pytest.mark.parametrize(
    "unusable",
    [{"SecretString": "too-short"}, {"SecretBinary": b"k" * 40}],
    ids=["short", "binary"],
)
def test_an_unusable_previous_key_leaves_a_forged_token_a_refusal_not_a_500(
    validate_token, mint, secretsmanager, secret, unusable
):
    """A forged token makes the function read AWSPREVIOUS; a version holding no usable key
    is skipped, so the answer stays 200 bad_signature (a 500 would page on every forgery)."""
    current = "c" * 40
    secretsmanager.put_secret_value(SecretId=secret, **unusable)
    secretsmanager.put_secret_value(SecretId=secret, SecretString=current)  # unusable: previous

    forged = check(validate_token, mint("call-1", "get_weather", key="f" * 40))

    assert forged.status == 200
    assert forged.body == {"valid": False, "reason": tokens.Refusal.BAD_SIGNATURE}
    genuine = check(validate_token, mint("call-1", "get_weather", key=current))
    assert genuine.body == {"valid": True}
