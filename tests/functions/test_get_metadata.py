"""GET /sessions/{session_id}/metadata through the get_metadata handler, both formats."""

from __future__ import annotations


def test_an_unknown_session_reads_as_empty(get_metadata):
    response = get_metadata(session_id="never-written")
    assert response.status == 200
    assert response.body == {"session_id": "never-written", "metadata": {}}


def test_reads_back_what_was_stored_with_its_json_types(get_metadata, set_metadata):
    metadata = {
        "caller": "+15551234567",
        "attempts": 2,
        "ratio": 0.5,
        "whole_float": 2.0,
        "big": 2**62,
        "flag": False,
        "nothing_yet": [],
        "cart": {"items": ["a", "b"], "total": 12.5, "notes": None},
        "unicode": "caf\u00e9 \u2603",
    }
    assert set_metadata("PUT", metadata, session_id="call-7").status == 200

    response = get_metadata(session_id="call-7")
    assert response.status == 200
    assert response.body == {"session_id": "call-7", "metadata": metadata}
    stored = response.body["metadata"]
    # == treats 2 and 2.0 alike; the contract does not: ints stay ints, floats floats.
    assert type(stored["attempts"]) is int
    assert type(stored["whole_float"]) is float
    assert type(stored["big"]) is int


def test_sessions_are_separate(get_metadata, set_metadata):
    set_metadata("PATCH", {"who": "a"}, session_id="call-a")
    set_metadata("PATCH", {"who": "b"}, session_id="call-b")
    assert get_metadata(session_id="call-a").body["metadata"] == {"who": "a"}
    assert get_metadata(session_id="call-b").body["metadata"] == {"who": "b"}


def test_a_get_ignores_any_body(get_metadata):
    response = get_metadata("GET", {"metadata": {"injected": True}}, session_id="call-1")
    assert response.body == {"session_id": "call-1", "metadata": {}}
