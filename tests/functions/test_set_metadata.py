"""PATCH (merge) and PUT (replace) /sessions/{session_id}/metadata through the
set_metadata handler, both formats."""

from __future__ import annotations

import json

import pytest
from lambda_harness import assert_error

from session_manager.codec import MAX_ITEM_BYTES, MAX_KEY_CHARS
from session_manager.http import MAX_BODY_BYTES


def stored(get_metadata, session_id: str = "call-1") -> dict:
    return get_metadata(session_id=session_id).body["metadata"]


# -- PATCH: shallow merge, null removes -----------------------------------------------------


def test_patch_creates_a_session_and_returns_its_metadata(set_metadata, get_metadata):
    response = set_metadata("PATCH", {"step": "greeting", "attempts": 1})
    assert response.status == 200
    assert response.body == {
        "session_id": "call-1",
        "metadata": {"step": "greeting", "attempts": 1},
    }
    assert stored(get_metadata) == {"step": "greeting", "attempts": 1}


def test_patch_merges_shallowly_and_null_removes_a_key(set_metadata, get_metadata):
    set_metadata("PATCH", {"a": 1, "b": 2, "cart": {"items": ["x"], "total": 1.5}})

    response = set_metadata("PATCH", {"b": None, "c": 3, "cart": {"items": []}})

    expected = {"a": 1, "c": 3, "cart": {"items": []}}  # cart replaced whole: shallow
    assert response.status == 200
    assert response.body == {"session_id": "call-1", "metadata": expected}
    assert stored(get_metadata) == expected


def test_patch_with_null_for_an_absent_key_is_harmless(set_metadata, get_metadata):
    set_metadata("PATCH", {"a": 1})
    response = set_metadata("PATCH", {"never_set": None})
    assert response.status == 200
    assert response.body["metadata"] == {"a": 1}


def test_an_empty_patch_changes_nothing(set_metadata, get_metadata):
    set_metadata("PATCH", {"a": 1})
    assert set_metadata("PATCH", {}).body["metadata"] == {"a": 1}
    assert stored(get_metadata) == {"a": 1}


def test_patch_keeps_json_types(set_metadata, get_metadata):
    values = {"int": 3, "float": 3.0, "neg": -1e-9, "list": [1, "2", [3.5]], "s": "\u2603"}
    set_metadata("PATCH", values)
    read = stored(get_metadata)
    assert read == values
    assert type(read["int"]) is int and type(read["float"]) is float


def test_escaped_surrogate_pairs_are_text(set_metadata, get_metadata):
    """A pair of escapes is one character (here an emoji); only an unpaired one is refused."""
    response = set_metadata("PATCH", '{"mood": "\\ud83d\\ude00"}')
    assert response.status == 200
    assert stored(get_metadata) == {"mood": "\U0001f600"}


# -- PUT: replace ---------------------------------------------------------------------------


def test_put_replaces_all_the_metadata(set_metadata, get_metadata):
    set_metadata("PATCH", {"a": 1, "b": 2})

    response = set_metadata("PUT", {"c": 3})

    assert response.status == 200
    assert response.body == {"session_id": "call-1", "metadata": {"c": 3}}
    assert stored(get_metadata) == {"c": 3}


def test_put_stores_null_values_as_sent(set_metadata, get_metadata):
    """Only a merge reads null as "remove"; a replacement is the body, as sent."""
    response = set_metadata("PUT", {"pending": None, "a": 1})
    assert response.body["metadata"] == {"pending": None, "a": 1}
    assert stored(get_metadata) == {"pending": None, "a": 1}


def test_put_of_an_empty_object_empties_the_session(set_metadata, get_metadata):
    set_metadata("PATCH", {"a": 1})
    assert set_metadata("PUT", {}).body["metadata"] == {}
    assert stored(get_metadata) == {}


# -- too large, bad keys ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_metadata_too_large_for_one_item_is_413_and_writes_nothing(
    set_metadata, get_metadata, method
):
    set_metadata("PATCH", {"kept": True})
    blob = "x" * MAX_ITEM_BYTES  # fits the request, not one DynamoDB item
    body = json.dumps({"blob": blob})
    assert MAX_ITEM_BYTES < len(body) <= MAX_BODY_BYTES

    response = set_metadata(method, body)

    assert_error(response, 413, "payload_too_large")
    assert stored(get_metadata) == {"kept": True}


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_merge_that_grows_the_item_past_the_limit_is_413(set_metadata, get_metadata, method):
    """Each half fits one item; together they pass DynamoDB's 400 KB (409,600 bytes), so a
    merge is refused and changes nothing, while a replacement fits."""
    half = "x" * 205_000
    set_metadata("PATCH", {"first": half})
    response = set_metadata(method, {"second": half})
    if method == "PATCH":
        assert_error(response, 413, "payload_too_large")
        assert stored(get_metadata) == {"first": half}
    else:
        assert response.status == 200
        assert stored(get_metadata) == {"second": half}


def test_a_put_of_exactly_what_get_returns_is_accepted_near_the_limit(
    set_metadata, get_metadata
):
    """Non-ASCII text near the item limit: the read is sent as UTF-8, not as \\u escapes
    (six bytes for each two-byte character), so the metadata it returns, sent back byte for
    byte, fits a request body and is accepted."""
    stored_text = "\u00e9" * 190_000  # 380,000 bytes as UTF-8
    written = json.dumps({"note": stored_text}, ensure_ascii=False)
    assert set_metadata("PUT", written).status == 200

    body = get_metadata().raw["body"]
    prefix = '{"session_id":"call-1","metadata":'
    assert body.startswith(prefix) and body.endswith("}")
    metadata_as_read = body[len(prefix) : -1]
    assert len(metadata_as_read.encode()) <= MAX_BODY_BYTES

    response = set_metadata("PUT", metadata_as_read)

    assert response.status == 200
    assert stored(get_metadata) == {"note": stored_text}


def test_a_put_of_what_get_returns_is_accepted_whatever_the_keys(set_metadata, get_metadata):
    """A key is stored as its UTF-8 bytes, but a read sends it as JSON text: a control
    character is one byte stored and six (\\u0001) read. A session filled near the item
    limit with such keys, a few PATCHes at a time, reads back as a body several times its
    stored size, which a PUT must still take back."""
    padding = "\x01" * (MAX_KEY_CHARS - 4)
    keys = [f"{padding}{i:04d}" for i in range(380)]  # ~390,000 bytes stored, ~2.3 MB read
    for start in range(0, len(keys), 50):
        chunk = {key: 1 for key in keys[start : start + 50]}
        assert set_metadata("PATCH", chunk).status == 200

    body = get_metadata().raw["body"]
    prefix = '{"session_id":"call-1","metadata":'
    metadata_as_read = body[len(prefix) : -1]
    assert len(metadata_as_read.encode()) > 4 * MAX_ITEM_BYTES

    response = set_metadata("PUT", metadata_as_read)

    assert response.status == 200
    assert stored(get_metadata) == dict.fromkeys(keys, 1)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_bad_metadata_values_and_keys_are_400(set_metadata, method):
    bad = {
        "key-too-long": {"k" * (MAX_KEY_CHARS + 1): 1},
        "overflowing-float": '{"a": 1e400}',  # parses as inf, which JSON cannot hold
        "lone-surrogate": '{"a": "\\ud800"}',  # valid JSON, not encodable as UTF-8
        "lone-low-surrogate": '{"a": "x\\uDC00y"}',
        "raw-lone-surrogate": '{"a": "\ud800"}',  # the character itself, not an escape
        "deep-but-parsable": '{"a": ' + "[" * 990 + "]" * 990 + "}",
    }
    for case, body in bad.items():
        response = set_metadata(method, body)
        assert response.status == 400, (case, response.body)
        assert_error(response, 400, "invalid_request")
