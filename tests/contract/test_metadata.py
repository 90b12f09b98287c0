"""The metadata routes: read, merge, replace, delete, end; JSON round trips."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def metadata_path(session_id: str) -> str:
    return f"/sessions/{session_id}/metadata"


def test_unknown_session_reads_as_empty_metadata(api, new_session):
    session = new_session()
    reply = api.get(metadata_path(session))
    assert reply.status == 200
    assert reply.headers.get("Content-Type") == "application/json"
    assert reply.json == {"session_id": session, "metadata": {}}


def test_patch_merges_shallowly_and_null_removes_a_key(api, new_session):
    session = new_session()
    first = {"step": 1, "score": 2.5, "caller": {"name": "Ada", "tags": ["vip", 7]}}
    reply = api.patch(metadata_path(session), first)
    assert reply.status == 200
    assert reply.json == {"session_id": session, "metadata": first}

    reply = api.patch(metadata_path(session), {"score": None, "step": 2, "lang": "fr"})
    merged = {"step": 2, "caller": {"name": "Ada", "tags": ["vip", 7]}, "lang": "fr"}
    assert reply.status == 200
    assert reply.json == {"session_id": session, "metadata": merged}

    stored = api.get(metadata_path(session)).json["metadata"]
    assert stored == merged
    # JSON round trip: an integer stays an integer, a float a float.
    assert type(stored["step"]) is int
    api.patch(metadata_path(session), {"ratio": 0.5})
    assert type(api.get(metadata_path(session)).json["metadata"]["ratio"]) is float


def test_patch_replaces_nested_objects_whole(api, new_session):
    session = new_session()
    api.patch(metadata_path(session), {"caller": {"name": "Ada", "vip": True}})
    reply = api.patch(metadata_path(session), {"caller": {"name": "Grace"}})
    assert reply.json["metadata"] == {"caller": {"name": "Grace"}}


def test_put_replaces_the_metadata(api, new_session):
    session = new_session()
    api.patch(metadata_path(session), {"a": 1, "b": 2})
    reply = api.put(metadata_path(session), {"c": 3})
    assert reply.status == 200
    assert reply.json == {"session_id": session, "metadata": {"c": 3}}
    assert api.get(metadata_path(session)).json["metadata"] == {"c": 3}


def test_delete_reports_whether_a_session_existed(api, new_session):
    session = new_session()
    api.patch(metadata_path(session), {"a": 1})

    reply = api.delete(metadata_path(session))
    assert reply.status == 200
    assert reply.json == {"session_id": session, "deleted": True}
    assert api.get(metadata_path(session)).json["metadata"] == {}

    again = api.delete(metadata_path(session))
    assert again.status == 200
    assert again.json == {"session_id": session, "deleted": False}


def test_ending_a_session_deletes_its_metadata(api, new_session):
    session = new_session()
    api.patch(metadata_path(session), {"step": 1})
    reply = api.delete(f"/sessions/{session}")
    assert reply.status == 200
    assert reply.json == {"session_id": session, "ended": True}
    assert api.get(metadata_path(session)).json["metadata"] == {}


def test_unicode_metadata_round_trips(api, new_session):
    session = new_session()
    value = {"name": "Zoë", "greeting": "こんにちは", "emoji": "🚀"}
    assert api.patch(metadata_path(session), value).json["metadata"] == value
    assert api.get(metadata_path(session)).json["metadata"] == value


def test_session_ids_with_every_allowed_character(api, new_session):
    session = new_session(prefix="Aa0._-", suffix="x" * 90)
    assert len(session) == 128  # the longest allowed
    reply = api.patch(metadata_path(session), {"ok": True})
    assert reply.status == 200
    assert reply.json["session_id"] == session
