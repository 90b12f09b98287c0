"""docs/openapi.yaml is true: its routes are the template's, and the real handlers' answers
over HTTP (the local API, embedded moto) match its schemas, status codes and headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import uuid
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from local_http import SIGNING_KEY, TIMEOUT_SECS
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools import template
from local_api.server import OPENAPI, OPENAPI_PATH, openapi_document
from session_manager.errors import UnavailableError
from session_manager.http import MAX_BODY_BYTES
from session_manager.validation import SESSION_ID

with open(OPENAPI, encoding="utf-8") as _stream:
    DOCUMENT: dict[str, Any] = yaml.safe_load(_stream)

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# What an answer must match: its status is one the operation documents (so never a 500;
# a 503 is documented), and its content type, headers and body are the documented ones.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in _METHODS
    }


def template_routes() -> set[tuple[str, str]]:
    return {(r.method, r.path) for function in template.functions() for r in function.routes}


# The local API is checked against the copy it serves (no auth: it takes plain requests).
SCHEMA = schemathesis.openapi.from_dict(openapi_document("http://127.0.0.1"))


def component(pointer: str) -> Draft202012Validator:
    """A validator for one schema of the document, its $refs resolved within it."""
    resource = Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openapi", resource)
    return Draft202012Validator({"$ref": f"urn:openapi#{pointer}"}, registry=registry)


# -- the document itself ---------------------------------------------------------------------


def test_document_is_valid_openapi_3_1():
    validate_openapi(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def test_routes_are_the_templates():
    assert documented_routes() == template_routes()


def test_refusal_reasons_are_the_contracts():
    reasons = DOCUMENT["components"]["schemas"]["RefusalReason"]["enum"]
    assert set(reasons) == {
        "malformed",
        "missing_call_id",
        "wrong_function",
        "wrong_call",
        "expired",
        "bad_signature",
        "revoked",
        "replayed",
    }


def test_every_operation_needs_iam_or_a_jwt_as_deployed():
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["sigv4"]["type"] == "apiKey"
    assert (schemes["sigv4"]["in"], schemes["sigv4"]["name"]) == ("header", "Authorization")
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert (schemes["jwt"]["type"], schemes["jwt"]["scheme"]) == ("http", "bearer")
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in _METHODS:
                required = operation.get("security", DOCUMENT.get("security"))
                assert required == [{"sigv4": []}, {"jwt": []}], (method, path)


@pytest.mark.slow  # a server
def test_the_local_api_serves_the_document_as_json(client):
    reply = client.get(OPENAPI_PATH)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json == {**DOCUMENT, "servers": reply.json["servers"], "security": []}
    assert reply.json["servers"] == [{"url": client.base_url, "description": "make serve"}]
    reply = client.post(OPENAPI_PATH, {})
    assert (reply.status, reply.headers["Allow"]) == (405, "GET")
    assert reply.error_code == "method_not_allowed"


@pytest.mark.slow  # a server
def test_the_served_document_names_the_port_it_is_served_on(local_api):
    """PORT=8080 make serve: a client generator reading /openapi.json must reach 8080."""
    with requests.get(local_api.url + OPENAPI_PATH, timeout=TIMEOUT_SECS) as reply:
        assert [server["url"] for server in reply.json()["servers"]] == [local_api.url]


# -- the handlers' real answers --------------------------------------------------------------

METADATA = "/sessions/{session_id}/metadata"
TOKENS = "/sessions/{session_id}/tokens"
VALIDATE = "/tokens/validate"
SESSION = "/sessions/{session_id}"
OVERSIZED_BODY = json.dumps({"blob": "x" * MAX_BODY_BYTES})  # past the functions' limit
OVERSIZED_METADATA = {"blob": "x" * 400_000}  # fits a body, not one item


def new_session() -> str:
    return f"doc-{uuid.uuid4().hex[:12]}"


def forged_token(call_id: str, function_name: str, expiry: int, key: str) -> str:
    """A token in the SDK's format, signed with `key`, with any expiry."""
    nonce = uuid.uuid4().hex
    message = f"{call_id}:{function_name}:{expiry}:{nonce}".encode()
    signature = hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    raw = f"{call_id}.{function_name}.{expiry}.{nonce}.{signature}".encode()
    return base64.urlsafe_b64encode(raw).decode()


class Conformance:
    """Sends requests to the local API and checks each answer against the operation's
    documented responses (status, content type, headers, schema) with schemathesis."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.seen: set[tuple[str, str, int]] = set()

    def send(
        self,
        method: str,
        path: str,
        session_id: str | None = None,
        *,
        body: Any = None,
        raw: str | None = None,
    ) -> requests.Response:
        parameters = {} if session_id is None else {"session_id": session_id}
        url = self.base_url + path.replace("{session_id}", quote(session_id or "", safe=""))
        data = raw if raw is not None else None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        response = self.session.request(
            method, url, data=data, headers=headers, timeout=TIMEOUT_SECS
        )
        case = SCHEMA[path][method].Case(path_parameters=parameters or None)
        case.validate_response(response, checks=CHECKS)
        self.seen.add((method, path, response.status_code))
        return response


@pytest.fixture
def conformance(local_api) -> Conformance:
    return Conformance(local_api.url)


@pytest.mark.slow  # a server
def test_every_documented_answer_is_what_the_handlers_send(local_api, conformance, monkeypatch):
    send = conformance.send
    session = new_session()

    # Metadata: success, bad input, no route, too large.
    assert send("GET", METADATA, session).json() == {"session_id": session, "metadata": {}}
    assert send("PATCH", METADATA, session, body={"a": 1, "b": [1.5, {"c": None}]}).ok
    assert send("PUT", METADATA, session, body={"z": "last"}).json()["metadata"] == {"z": "last"}
    assert send("DELETE", METADATA, session).json()["deleted"] is True
    assert send("DELETE", METADATA, session).json()["deleted"] is False
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        assert send(method, METADATA, "no spaces", body={}).status_code == 400
        assert send(method, METADATA, "", body={}).status_code == 404
    for method in ("PATCH", "PUT"):
        assert send(method, METADATA, session, raw="[1, 2]").status_code == 400
        assert send(method, METADATA, session, raw=OVERSIZED_BODY).status_code == 413
        assert send(method, METADATA, session, body=OVERSIZED_METADATA).status_code == 413

    # Ending a session: success, bad input, no route.
    ended = new_session()
    assert send("DELETE", SESSION, ended).json() == {"session_id": ended, "ended": True}
    assert send("DELETE", SESSION, "no spaces").status_code == 400
    assert send("DELETE", SESSION, "").status_code == 404

    # Tokens: minted, then every refusal the HTTP API can give.
    token = send("POST", TOKENS, session, body={"function_name": "lookup"}).json()["token"]
    assert send("POST", TOKENS, session, body={"function_name": "no-dash"}).status_code == 400
    assert send("POST", TOKENS, "", body={"function_name": "lookup"}).status_code == 404
    assert send("POST", TOKENS, session, raw=OVERSIZED_BODY).status_code == 413
    expired = forged_token(session, "lookup", 1_000_000_000, SIGNING_KEY)
    forged = forged_token(session, "lookup", 4_000_000_000, "another-key-" + "0" * 32)
    answers = {
        "valid": (token, session, "lookup"),
        "wrong_function": (token, session, "other"),
        "wrong_call": (token, "another-call", "lookup"),
        "malformed": ("not-a-token", session, "lookup"),
        "expired": (expired, session, "lookup"),
        "bad_signature": (forged, session, "lookup"),
    }
    for expected, (value, call_id, function_name) in answers.items():
        body = {"token": value, "call_id": call_id, "function_name": function_name}
        answer = send("POST", VALIDATE, body=body).json()
        assert answer.get("reason", "valid") == expected, answer
    assert send("POST", VALIDATE, body={"token": token}).status_code == 400
    assert send("POST", VALIDATE, raw=OVERSIZED_BODY).status_code == 413

    # AWS unavailable: 503 with Retry-After from every operation.
    failing = {
        ("GET", METADATA): ("get_metadata", "get_session_metadata"),
        ("PATCH", METADATA): ("set_metadata", "set_session_metadata"),
        ("PUT", METADATA): ("set_metadata", "replace_session_metadata"),
        ("DELETE", METADATA): ("delete_metadata", "delete_session_metadata"),
        ("DELETE", SESSION): ("delete_metadata", "end_session"),
        ("POST", TOKENS): ("create_token", "issue_token"),
        ("POST", VALIDATE): ("validate_token", "check_token"),
    }
    for (method, path), (function, call) in failing.items():
        module = sys.modules[f"{local_api._namespace}_{function}_app"]
        monkeypatch.setattr(module.manager, call, unavailable)
        body = {"token": token, "call_id": session, "function_name": "lookup"}
        response = send(method, path, None if path == VALIDATE else session, body=body)
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()

    # Every answer the document declares for an operation was seen, and checked.
    documented = {
        (method.upper(), path, int(status))
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
        for status in operation["responses"]
    }
    assert conformance.seen == documented


def unavailable(*args: Any, **kwargs: Any) -> Any:
    raise UnavailableError("stubbed: AWS unreachable")


@pytest.mark.slow  # a server
def test_a_method_a_path_does_not_have_is_the_documented_405(local_api):
    validator = component("/components/responses/MethodNotAllowed/content/application~1json/schema")
    for path, item in DOCUMENT["paths"].items():
        methods = {m.upper() for m in item if m in _METHODS}
        if not methods:
            continue
        url = local_api.url + path.replace("{session_id}", new_session())
        for method in ("TRACE", "OPTIONS", *({"GET", "POST", "PATCH"} - methods)):
            response = requests.request(method, url, timeout=TIMEOUT_SECS)
            assert response.status_code == 405, (method, path)
            assert set(response.headers["Allow"].split(", ")) == methods
            validator.validate(response.json())


# -- fuzzing: schemathesis against the local API ----------------------------------------------


SEED = {"seed": "kept unless a request succeeds", "n": 1}


def stored(local_api, session_id: str | None) -> Any:
    """The session's item as DynamoDB holds it; the whole table when there is no session."""
    dynamodb = boto3.client("dynamodb")
    table = local_api.backend.table_name
    if session_id is not None:
        key = {template.table().partition_key: {"S": session_id}}
        return dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=json.dumps)


@pytest.mark.slow  # a server, and ~20 s of requests
@SCHEMA.parametrize()
@settings(
    max_examples=15,  # per operation and generation mode; the coverage phase adds its own
    deadline=None,
    database=None,  # nothing written to the worktree
    derandomize=True,  # the same cases on every run: a failure here is a finding, not luck
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_no_server_error_every_answer_documented_refusals_change_nothing(case, local_api):
    """Every check schemathesis has (no 5xx, status, headers and body as documented, invalid
    input refused, 405 with Allow for other methods), plus: a refused request leaves the
    stored session as it was (seeded first, so a change would show), and what a write
    accepts, a read returns."""
    session_id = (case.path_parameters or {}).get("session_id")
    if not (isinstance(session_id, str) and SESSION_ID.fullmatch(session_id)):
        session_id = None
    url = local_api.url + "/sessions/{}/metadata"
    if session_id is not None and case.method in ("PATCH", "PUT", "DELETE"):
        seeded = requests.put(url.format(session_id), json=SEED, timeout=TIMEOUT_SECS)
        assert seeded.status_code == 200, seeded.text
    before = stored(local_api, session_id)

    response = case.call_and_validate(base_url=local_api.url, timeout=TIMEOUT_SECS)

    if response.status_code >= 400:
        assert stored(local_api, session_id) == before, "a refused request changed the store"
    elif case.method in ("PATCH", "PUT"):  # whatever a write accepts, a read returns
        read = requests.get(url.format(session_id), timeout=TIMEOUT_SECS)
        assert read.json()["metadata"] == response.json()["metadata"]
