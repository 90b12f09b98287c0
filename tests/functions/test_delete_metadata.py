"""DELETE /sessions/{session_id}/metadata through the delete_metadata handler, both
formats: deleted is true when a live session existed."""

from __future__ import annotations


def test_deleting_a_session_reports_true_and_empties_it(
    delete_metadata, set_metadata, get_metadata
):
    set_metadata("PATCH", {"step": "confirm"}, session_id="call-1")

    response = delete_metadata(session_id="call-1")
    assert response.status == 200
    assert response.body == {"session_id": "call-1", "deleted": True}
    assert get_metadata(session_id="call-1").body["metadata"] == {}


def test_deleting_again_reports_false(delete_metadata, set_metadata):
    set_metadata("PATCH", {"step": "confirm"}, session_id="call-1")
    assert delete_metadata(session_id="call-1").body["deleted"] is True
    response = delete_metadata(session_id="call-1")
    assert response.status == 200
    assert response.body == {"session_id": "call-1", "deleted": False}


def test_deleting_an_unknown_session_reports_false(delete_metadata):
    response = delete_metadata(session_id="never-written")
    assert response.status == 200
    assert response.body == {"session_id": "never-written", "deleted": False}


def test_deleting_one_session_leaves_the_others(delete_metadata, set_metadata, get_metadata):
    set_metadata("PATCH", {"who": "a"}, session_id="call-a")
    set_metadata("PATCH", {"who": "b"}, session_id="call-b")
    delete_metadata(session_id="call-a")
    assert get_metadata(session_id="call-b").body["metadata"] == {"who": "b"}
