"""The token lifecycle over HTTP, with TOKEN_REVOCATION and SINGLE_USE_TOKENS on: ending a
session revokes its tokens, and a token validates once."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def mint(api, session: str, function_name: str = "get_weather") -> str:
    reply = api.post(f"/sessions/{session}/tokens", {"function_name": function_name})
    assert reply.status == 201, reply.body
    return reply.json["token"]


def validate(api, session: str, token: str) -> dict:
    body = {"token": token, "call_id": session, "function_name": "get_weather"}
    reply = api.post("/tokens/validate", body)
    assert reply.status == 200, reply.body
    return reply.json


def test_ending_a_session_revokes_its_tokens(lifecycle_api, new_session):
    api = lifecycle_api
    session, other = new_session(api), new_session(api)
    unused, others = mint(api, session), mint(api, other)
    assert api.patch(f"/sessions/{session}/metadata", {"step": 1}).status == 200

    reply = api.delete(f"/sessions/{session}")
    assert reply.status == 200
    assert reply.json == {"session_id": session, "ended": True}

    assert validate(api, session, unused) == {"valid": False, "reason": "revoked"}
    assert api.get(f"/sessions/{session}/metadata").json["metadata"] == {}
    assert validate(api, other, others) == {"valid": True}


def test_a_replayed_token_is_refused(lifecycle_api, new_session):
    api = lifecycle_api
    session = new_session(api)
    token = mint(api, session)
    assert validate(api, session, token) == {"valid": True}
    assert validate(api, session, token) == {"valid": False, "reason": "replayed"}


def test_the_metadata_route_still_deletes_metadata_only(lifecycle_api, new_session):
    api = lifecycle_api
    session = new_session(api)
    token = mint(api, session)
    api.patch(f"/sessions/{session}/metadata", {"step": 1})
    reply = api.delete(f"/sessions/{session}/metadata")
    assert reply.json == {"session_id": session, "deleted": True}
    assert validate(api, session, token) == {"valid": True}  # not ended: not revoked


def test_without_the_modes_a_token_validates_again_and_after_its_session_ends(api, new_session):
    if not api.local:
        pytest.skip("the deployed stack's token modes are its parameters'")
    session = new_session()
    token = mint(api, session)
    assert validate(api, session, token) == {"valid": True}
    assert validate(api, session, token) == {"valid": True}
    assert api.delete(f"/sessions/{session}").status == 200
    assert validate(api, session, token) == {"valid": True}
