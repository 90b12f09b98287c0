"""TypeScript agents' tokens, checked through the API (POST /tokens/validate).

The TypeScript SDK mints `Buffer.from(raw).toString("base64url")`: base64url without
padding, over the same fields as the Python SDK but with a 32-hex nonce
(`randomBytes(16)`). A TS agent that holds the shared key mints such tokens; here they are
minted by hand with the key in the secret and sent to the validate_token function.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from devtools import lambda_runtime, template
from session_manager import tokens

FUNCTION = "transfer_to_billing"
CALL_ID = "e2c4a6b8-1d3f-4a5b-9c7d-0e1f2a3b4c5d"


def ts_token(
    key: str, call_id: str, function_name: str, expiry: int, signature_chars: int = 64
) -> str:
    """A token as the TypeScript SDK mints it."""
    nonce = secrets.token_hex(16)
    message = f"{call_id}:{function_name}:{expiry}:{nonce}".encode()
    signature = hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:signature_chars]
    raw = f"{call_id}.{function_name}.{expiry}.{nonce}.{signature}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def validate_event(body: dict[str, Any]) -> dict[str, Any]:
    """POST /tokens/validate as API Gateway's HTTP API (payload 2.0) delivers it."""
    return {
        "version": "2.0",
        "routeKey": "POST /tokens/validate",
        "rawPath": "/tokens/validate",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "node"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": "POST",
                "path": "/tokens/validate",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "node",
            },
            "requestId": "ts-token-test",
            "routeKey": "POST /tokens/validate",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 1735689600000,
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


LAMBDA_CONTEXT = SimpleNamespace(
    function_name="ValidateTokenFunction",
    function_version="$LATEST",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:ValidateTokenFunction",
    aws_request_id="ts-token-test",
)


@pytest.fixture
def validate(env) -> Callable[[str, str, str], tuple[int, dict[str, Any]]]:
    """Call the deployed validate_token function's handler (as template.yaml names it)."""
    (function,) = [f for f in template.functions() if f.name == "validate_token"]
    handler = lambda_runtime.load_handler(function)

    def call(token: str, call_id: str, function_name: str) -> tuple[int, dict[str, Any]]:
        body = {"token": token, "call_id": call_id, "function_name": function_name}
        response = handler(validate_event(body), LAMBDA_CONTEXT)
        return response["statusCode"], json.loads(response["body"])

    return call


# Call ids whose tokens need one or two "=" of padding (the assert checks it), so unpadded
# really is unpadded; with dots, as composed conversation ids have them.
@pytest.mark.parametrize("call_id", [f"{CALL_ID}.2", "root.12", "CAab12.3"])
def test_a_typescript_token_validates_through_the_api(validate, signing_key, call_id):
    token = ts_token(signing_key, call_id, FUNCTION, int(time.time()) + 900)
    assert "=" not in token and len(token) % 4  # base64 that needs padding, sent without

    assert validate(token, call_id, FUNCTION) == (200, {"valid": True})
    # The padded spelling of the same token, as the Python SDK writes it, too.
    padded = token + "=" * (-len(token) % 4)
    assert validate(padded, call_id, FUNCTION) == (200, {"valid": True})


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"call_id": "another-call"}, tokens.Refusal.WRONG_CALL),
        ({"function_name": "refund_order"}, tokens.Refusal.WRONG_FUNCTION),
        ({"expiry": -1}, tokens.Refusal.EXPIRED),
        ({"key": "not-the-shared-key-0123456789abcdef"}, tokens.Refusal.BAD_SIGNATURE),
        # Early TypeScript SDK releases cut the signature to 16 hex characters.
        ({"signature_chars": 16}, tokens.Refusal.MALFORMED),
    ],
    ids=["other call", "other function", "expired", "other key", "short signature"],
)
def test_the_api_refuses_a_typescript_token_for_anything_else(
    validate, signing_key, change, reason
):
    minted = {"key": signing_key, "expiry": 900, "signature_chars": 64, **change}
    token = ts_token(
        minted["key"],
        CALL_ID,
        FUNCTION,
        int(time.time()) + minted["expiry"],
        minted["signature_chars"],
    )
    asked = {"call_id": CALL_ID, "function_name": FUNCTION, **change}

    status, body = validate(token, asked["call_id"], asked["function_name"])

    assert (status, body) == (200, {"valid": False, "reason": reason})
