"""The token lifecycle over real HTTP, against the local API of `make serve` started with
TOKEN_REVOCATION=true and SINGLE_USE_TOKENS=true in its environment (as a shell would set
them): ending a session revokes its tokens, and a token validates once."""

from __future__ import annotations

import uuid

import pytest
from local_http import SIGNING_KEY, Client

from local_api.server import LocalApi


@pytest.fixture(scope="module")
def lifecycle_api():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOKEN_REVOCATION", "true")
        patch.setenv("SINGLE_USE_TOKENS", "true")
        with LocalApi(port=0, signing_key=SIGNING_KEY) as api:
            yield api


@pytest.fixture
def client(lifecycle_api) -> Client:
    return Client(lifecycle_api.url)


def new_session() -> str:
    return f"call-{uuid.uuid4().hex[:12]}"


def mint(client: Client, session: str, function_name: str = "get_weather") -> str:
    reply = client.post(f"/sessions/{session}/tokens", {"function_name": function_name})
    assert reply.status == 201, reply.body
    return reply.json["token"]


def validate(client: Client, session: str, token: str) -> dict:
    body = {"token": token, "call_id": session, "function_name": "get_weather"}
    reply = client.post("/tokens/validate", body)
    assert reply.status == 200, reply.body
    return reply.json


def test_the_shells_settings_reached_the_functions(lifecycle_api):
    assert lifecycle_api.overrides["TOKEN_REVOCATION"] == "true"
    assert lifecycle_api.overrides["SINGLE_USE_TOKENS"] == "true"


def test_ending_a_session_over_http_revokes_its_tokens(client):
    session, other = new_session(), new_session()
    unused, others = mint(client, session), mint(client, other)
    assert client.patch(f"/sessions/{session}/metadata", {"step": 1}).status == 200

    reply = client.delete(f"/sessions/{session}")
    assert reply.status == 200
    assert reply.json == {"session_id": session, "ended": True}

    assert validate(client, session, unused) == {"valid": False, "reason": "revoked"}
    assert client.get(f"/sessions/{session}/metadata").json["metadata"] == {}
    assert validate(client, other, others) == {"valid": True}


def test_a_replayed_token_over_http_is_refused(client):
    session = new_session()
    token = mint(client, session)
    assert validate(client, session, token) == {"valid": True}
    assert validate(client, session, token) == {"valid": False, "reason": "replayed"}


def test_the_metadata_route_still_deletes_metadata_only(client):
    session = new_session()
    token = mint(client, session)
    client.patch(f"/sessions/{session}/metadata", {"step": 1})
    reply = client.delete(f"/sessions/{session}/metadata")
    assert reply.json == {"session_id": session, "deleted": True}
    assert validate(client, session, token) == {"valid": True}  # not ended: not revoked
