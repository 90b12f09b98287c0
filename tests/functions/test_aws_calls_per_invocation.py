"""How many DynamoDB and Secrets Manager calls each function makes per invocation, cold
(the first on a new instance: new clients, no key cached) and warm, in both formats.

The function-level counterpart of tests/session_manager/test_aws_calls.py's table: one
row per function, each a run of invocations on one instance. The counts are the record:
a change is deliberate or a regression. (The token modes' extra ledger calls are in
test_end_session.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from lambda_harness import FAR_FUTURE

from session_manager import tokens


@dataclass(frozen=True)
class Invocation:
    what: str
    method: str
    calls: dict[str, int]
    body: Callable[[str], Any] = lambda key: None  # the request body, given the signing key
    answer: Any = None  # the response body, where the row checks it


def a_valid_token(key: str) -> dict[str, str]:
    token = tokens.mint(key.encode(), "call-1", "get_weather", FAR_FUTURE)
    return {"token": token, "call_id": "call-1", "function_name": "get_weather"}


def token_for(key: str) -> dict[str, str]:
    return {"function_name": "get_weather"}


CALLS = {
    "get_metadata": [
        Invocation("cold: the manager makes its client now", "GET", {"GetItem": 1}),
        Invocation("warm", "GET", {"GetItem": 1}),
    ],
    "set_metadata": [
        Invocation("cold", "PATCH", {"UpdateItem": 1}, lambda key: {"a": 1}),
        Invocation("warm merge", "PATCH", {"UpdateItem": 1}, lambda key: {"b": 2, "a": None}),
        Invocation("warm replace", "PUT", {"PutItem": 1}, lambda key: {"c": 3}),
    ],
    "delete_metadata": [
        Invocation("cold", "DELETE", {"DeleteItem": 1}),
        Invocation("warm", "DELETE", {"DeleteItem": 1}),
    ],
    "create_token": [
        Invocation("cold: fetches the signing key", "POST", {"GetSecretValue": 1}, token_for),
        Invocation("warm: the key is cached", "POST", {}, token_for),
    ],
    "validate_token": [
        Invocation("cold: fetches the key", "POST", {"GetSecretValue": 1}, a_valid_token),
        Invocation("warm: the key is cached", "POST", {}, a_valid_token, {"valid": True}),
    ],
}


@pytest.mark.parametrize("name", CALLS)
def test_aws_calls_per_invocation(load_function, aws_calls, signing_key, name):
    function = load_function(name)
    for invocation in CALLS[name]:
        aws_calls.clear()
        response = function(invocation.method, invocation.body(signing_key), session_id="call-1")
        assert aws_calls == invocation.calls, invocation.what
        if invocation.answer is not None:
            assert response.body == invocation.answer, invocation.what
