"""session_manager.http through the real handlers: event parsing in both payload formats,
request validation, the error envelope, and the mapping of failures to 400/405/503/500.

What one function does with a good request is in that function's own test module; here is
what all five share, run against each of them. Where many inputs share one expectation, a
test loops over them in one (warm) function instance instead of importing it per input:
the failure message names the input.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from event_sources import SOURCES, make_event, single_value
from lambda_harness import (
    FAR_FUTURE,
    FUNCTIONS,
    as_response,
    assert_error,
    assert_unavailable,
    request_id,
)

from devtools import aws_local
from devtools.context import LambdaContext
from session_manager import tokens
from session_manager.http import MAX_BODY_BYTES, Route, parse_event

SESSION_FUNCTIONS = ["get_metadata", "set_metadata", "delete_metadata", "create_token"]
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

# (function, method) for every route that reads a JSON body.
BODY_ROUTES = [
    ("set_metadata", "PATCH"),
    ("set_metadata", "PUT"),
    ("create_token", "POST"),
    ("validate_token", "POST"),
]


def good_body(function: str) -> dict[str, Any]:
    """A body the function accepts (ignored by the functions that read none)."""
    if function == "set_metadata":
        return {"step": "greeting"}
    if function == "create_token":
        return {"function_name": "get_weather"}
    # Well formed but signed with another key: refused (200) after one key fetch.
    token = tokens.mint(b"x" * 32, "call-1", "get_weather", FAR_FUTURE)
    return {"token": token, "call_id": "call-1", "function_name": "get_weather"}


def real_body(function: str, signing_key: str) -> dict[str, Any]:
    """A body that makes the function call AWS (validate: a token signed with the key)."""
    if function == "validate_token":
        token = tokens.mint(signing_key.encode(), "call-1", "get_weather", FAR_FUTURE)
        return {"token": token, "call_id": "call-1", "function_name": "get_weather"}
    return good_body(function)


# -- routes and methods ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_answers_exactly_the_methods_its_routes_declare(load_function, name):
    """The template's routes and the handler's accepted methods must not drift: any other
    method is a 405 whose Allow header lists the template's methods."""
    function = load_function(name)
    allowed = function.methods()
    for method in ALL_METHODS:
        response = function(method, good_body(name))
        if method in allowed:
            assert response.status < 300, (method, response.body)
        else:
            assert_error(response, 405, "method_not_allowed")
            assert sorted(response.headers["Allow"].split(", ")) == allowed


def test_a_post_sent_to_get_metadata_is_405_with_allow(load_function):
    response = load_function("get_metadata")("POST", {"a": 1})
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET"


def test_each_functions_routes_in_code_are_the_templates(import_function):
    """One source of truth: the routes a function matches paths against are the ones
    template.yaml gives API Gateway."""
    for name, spec in FUNCTIONS.items():
        handler = import_function(name).handler
        assert {(r.method, r.path) for r in handler.routes} == {
            (r.method, r.path) for r in spec.routes
        }, name


# -- every event source the SDK's ServerlessAdapter accepts ---------------------------------

SUCCESS = {"get_metadata": 200, "set_metadata": 200, "delete_metadata": 200}
SUCCESS.update(create_token=201, validate_token=200)


def invoke(function, event) -> tuple[dict[str, Any], Any]:
    """(what the handler returned, as the harness reads a single-value response)."""
    raw = function.handler(event, LambdaContext.for_function(function.spec))
    return raw, as_response(single_value(raw))


def assert_shaped_for(source: str, raw: dict[str, Any], status: int) -> None:
    if source.startswith("alb"):
        assert raw["statusDescription"].startswith(f"{status} "), raw
        assert raw["statusDescription"] != f"{status} "
        multi = source == "alb-multivalue"
        assert ("multiValueHeaders" in raw) is multi and ("headers" in raw) is not multi
        if multi:
            assert raw["multiValueHeaders"]["Content-Type"] == ["application/json"]
    else:
        assert "statusDescription" not in raw and "multiValueHeaders" not in raw


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_answers_every_event_source(import_function, signing_key, name, source):
    function = import_function(name, make_event(source))
    for method in function.methods():
        raw, response = invoke(function, function.event(method, real_body(name, signing_key)))
        assert response.status == SUCCESS[name], (method, response.body)
        assert_shaped_for(source, raw, SUCCESS[name])
        if name == "validate_token":
            assert response.body == {"valid": True}
        else:  # the session id was read from the event's path
            assert response.body["call_id" if name == "create_token" else "session_id"] == (
                "call-1"
            )


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_path_no_route_matches_is_404_and_a_wrong_method_405(import_function, name, source):
    function = import_function(name, make_event(source))
    paths = ("/", "/sessions/call-1", "/sessions/call-1/metadata/x", "/nowhere")
    # delete_metadata also serves DELETE /sessions/{session_id}: its own routes are not 404s.
    for path in [p for p in paths if not any(r.match(p) for r in function.handler.routes)]:
        event = function.make_event(function.methods()[0], path, None, good_body(name))
        raw, response = invoke(function, event)
        assert_error(response, 404, "not_found")
        assert_shaped_for(source, raw, 404)
    allowed = function.methods()
    wrong = next(m for m in ALL_METHODS if m not in allowed)
    raw, response = invoke(function, function.event(wrong, good_body(name)))
    assert_error(response, 405, "method_not_allowed")
    assert sorted(response.headers["Allow"].split(", ")) == allowed
    assert_shaped_for(source, raw, 405)


@pytest.mark.parametrize("name", SESSION_FUNCTIONS)
def test_an_invalid_session_id_in_a_routed_path_is_400(import_function, name):
    function = import_function(name, make_event("function-url"))
    for session_id in ("a:b", "s" * 129, "caf%C3%A9", "a%20b"):
        response = function(function.methods()[0], good_body(name), session_id=session_id)
        error = assert_error(response, 400, "invalid_request")
        assert "session id" in error["message"], session_id


def test_an_escaped_session_id_in_the_path_is_unescaped(import_function):
    function = import_function("get_metadata", make_event("alb"))
    response = function("GET", session_id="root%2E2")
    assert response.body["session_id"] == "root.2"


def test_an_http_api_stage_in_the_raw_path_is_not_part_of_the_route(import_function):
    function = import_function("get_metadata", make_event("function-url"))
    event = function.event("GET")
    event["requestContext"]["stage"] = "prod"
    event["rawPath"] = "/prod" + event["rawPath"]
    assert function.invoke(event).body["session_id"] == "call-1"


def test_a_load_balancer_event_takes_lambdas_request_id():
    routes = [Route("GET", "/sessions/{session_id}/metadata")]
    event = make_event("alb")("GET", "/sessions/{session_id}/metadata", {"session_id": "s1"})
    request = parse_event(event, routes, "lambda-request-1")
    assert (request.request_id, request.path_parameters) == (
        "lambda-request-1",
        {"session_id": "s1"},
    )
    assert request.route == "/sessions/{session_id}/metadata"


# -- events that are not API Gateway proxy events -------------------------------------------

NOT_API_GATEWAY: dict[str, Any] = {
    "empty": {},
    "sqs": {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]},
    "list": [],
    "string": "GET /sessions/x/metadata",
    "none": None,
    "empty-request-context": {"requestContext": {}},
    "request-context-not-a-dict": {"requestContext": "abc", "httpMethod": "GET"},
    "alb-without-method": {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:x"}},
        "path": "/sessions/s/metadata",
        "headers": {},
        "body": "",
        "isBase64Encoded": False,
    },
    "v2-without-http": {"version": "2.0", "requestContext": {"requestId": "r-1"}},
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_an_event_that_is_not_from_api_gateway_is_400(import_function, name):
    function = import_function(name)
    for case, event in NOT_API_GATEWAY.items():
        response = function.invoke(event)
        assert response.status == 400, (case, response.body)
        assert_error(response, 400, "invalid_request")


# -- event shapes the SDK's ServerlessAdapter accepts ---------------------------------------


@pytest.mark.parametrize(("name", "method"), BODY_ROUTES)
def test_a_body_given_as_json_rather_than_a_string_is_read_as_that_json(
    import_function, signing_key, name, method
):
    """As the SDK serialises it: a direct invoke or a console test gives an object."""
    function = import_function(name)
    event = function.event(method, "{}")
    event["body"] = real_body(name, signing_key)
    response = function.invoke(event)
    assert response.status == SUCCESS[name], response.body
    if name == "validate_token":
        assert response.body == {"valid": True}


@pytest.mark.parametrize("name", ["set_metadata", "validate_token"])
def test_a_body_given_as_json_that_is_not_an_object_is_400(import_function, name):
    function = import_function(name)
    for body in ([1, 2], 3, True, {"x": float("nan")}):
        event = function.event(function.methods()[0], "{}")
        event["body"] = body
        error = assert_error(function.invoke(event), 400, "invalid_request")
        assert "JSON" in error["message"], body


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_trailing_slash_is_the_same_route(import_function, signing_key, name, source):
    """The SDK strips it: /sessions/call-1/metadata/ is /sessions/call-1/metadata."""
    function = import_function(name, make_event(source))
    for method in function.methods():
        event = function.event(method, real_body(name, signing_key))
        if source == "function-url":
            event["rawPath"] += "/"
        else:
            event["path"] += "/"
        if source == "rest-proxy":
            event["pathParameters"]["proxy"] += "/"
        _, response = invoke(function, event)
        assert response.status == SUCCESS[name], (method, response.body)
        if name != "validate_token":
            assert response.body["call_id" if name == "create_token" else "session_id"] == (
                "call-1"
            )


def direct_invoke(function: Any, method: str, signing_key: str) -> dict[str, Any]:
    """What a direct invoke or a console test sends: no requestContext, no headers."""
    path = function.route_path().replace("{session_id}", "call-1")
    return {"httpMethod": method, "path": path, "body": real_body(function.spec.name, signing_key)}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_an_event_without_a_request_context_is_served(import_function, signing_key, name):
    """A direct invoke: httpMethod and path, the body as an object or a string; the
    request id is Lambda's."""
    function = import_function(name)
    for method in function.methods():
        event = direct_invoke(function, method, signing_key)
        response = function.invoke(event)
        assert response.status == SUCCESS[name], (method, response.body)
        event["body"] = json.dumps(event["body"])
        assert function.invoke(event).status == SUCCESS[name], method


def test_a_direct_invoke_may_name_only_its_path_parameters(import_function):
    function = import_function("get_metadata")
    response = function.invoke({"httpMethod": "GET", "pathParameters": {"session_id": "s-9"}})
    assert response.body == {"session_id": "s-9", "metadata": {}}


def test_a_direct_invoke_without_a_method_is_post_with_a_body_and_get_without(import_function):
    """The SDK's rule; a function whose route takes neither says which method to use."""
    function = import_function("get_metadata")
    response = function.invoke({"path": "/sessions/s-9/metadata"})
    assert response.body == {"session_id": "s-9", "metadata": {}}
    deleting = import_function("delete_metadata")
    assert_error(deleting.invoke({"path": "/sessions/s-9"}), 405, "method_not_allowed")


def test_a_direct_invoke_that_names_no_route_is_400_saying_what_to_send(import_function):
    function = import_function("delete_metadata")  # two routes with the same parameter
    for event in ({"httpMethod": "DELETE", "pathParameters": {"session_id": "s"}}, {}):
        error = assert_error(function.invoke(event), 400, "invalid_request")
        assert "path" in error["message"] and "/sessions/{session_id}" in error["message"]


def test_a_rest_proxy_path_is_not_decoded_twice(import_function):
    """API Gateway has decoded the {proxy+} parameter: x%41 is the id "x%41" (refused),
    not "xA"."""
    function = import_function("get_metadata", make_event("rest-proxy"))
    event = function.event("GET")
    event["pathParameters"]["proxy"] = "sessions/x%41/metadata"
    event["path"] = "/sessions/x%41/metadata"
    error = assert_error(function.invoke(event), 400, "invalid_request")
    assert "session id" in error["message"]
    event["pathParameters"]["proxy"] = "sessions/root.2/metadata"
    assert function.invoke(event).body["session_id"] == "root.2"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_path_parameters_that_are_not_an_object_are_400(import_function, name):
    function = import_function(name)
    event = function.event(function.methods()[0], good_body(name))
    event["pathParameters"] = ["session_id", "call-1"]
    assert_error(function.invoke(event), 400, "invalid_request")


# -- the session id in the path -------------------------------------------------------------

BAD_SESSION_IDS = {
    "space": "a b",
    "too-long": "s" * 129,
    "slash": "a/b",
    "empty": "",
    "non-ascii": "caf\u00e9",
    "newline": "a\nb",
    "colon": "a:b",
    "missing": None,  # no pathParameters at all
}


@pytest.mark.parametrize("name", SESSION_FUNCTIONS)
def test_an_invalid_session_id_in_the_path_is_400(load_function, name):
    function = load_function(name)
    for case, session_id in BAD_SESSION_IDS.items():
        for method in function.methods():
            response = function(method, good_body(name), session_id=session_id)
            error = assert_error(response, 400, "invalid_request")
            assert "session id" in error["message"], case


@pytest.mark.parametrize("name", SESSION_FUNCTIONS)
def test_session_ids_at_the_limits_of_the_contract_are_accepted(load_function, name):
    function = load_function(name)
    for session_id in ("s" * 128, "x", "root.2", "A-z_0.9", "..."):
        for method in function.methods():
            response = function(method, good_body(name), session_id=session_id)
            assert response.status < 300, (session_id, response.body)
            if "session_id" in response.body:
                assert response.body["session_id"] == session_id


# -- JSON bodies ----------------------------------------------------------------------------

BAD_BODIES = {
    "missing": None,
    "empty": "",
    "blank": "  \n",
    "bad-json": '{"step": ',
    "single-quotes": "{'function_name': 'get_weather'}",
    "trailing-garbage": '{"function_name": "get_weather"} x',
    "array": "[1, 2]",
    "array-of-objects": '[{"function_name": "get_weather"}]',
    "string": '"text"',
    "number": "5",
    "null": "null",
    "true": "true",
    # Otherwise valid bodies (create_token's function name is there) with one bad value:
    "nan": '{"a": NaN, "function_name": "get_weather"}',
    "infinity": '{"a": Infinity, "function_name": "get_weather"}',
    "minus-infinity": '{"a": -Infinity, "function_name": "get_weather"}',
    "too-deep": "[" * 100_000 + "]" * 100_000,
    "huge-integer": '{"a": ' + "9" * 5000 + ', "function_name": "get_weather"}',
    "lone-surrogate": '{"a": "\\ud800", "function_name": "get_weather"}',
}


@pytest.mark.parametrize(("name", "method"), BODY_ROUTES)
def test_a_body_that_is_not_a_json_object_is_400(load_function, name, method):
    function = load_function(name)
    for case, body in BAD_BODIES.items():
        response = function(method, body)
        assert response.status == 400, (case, response.body)
        assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(("name", "method"), BODY_ROUTES)
def test_a_body_over_the_size_limit_is_413(load_function, name, method):
    function = load_function(name)
    body = json.dumps(dict(good_body(name), padding="x" * MAX_BODY_BYTES))
    for base64_body in (False, True):
        response = function(method, body, base64_body=base64_body)
        error = assert_error(response, 413, "payload_too_large")
        assert str(MAX_BODY_BYTES) in error["message"]


@pytest.mark.parametrize(("name", "method"), BODY_ROUTES)
def test_a_base64_body_is_decoded(load_function, name, method):
    function = load_function(name)
    response = function(method, good_body(name), base64_body=True)
    assert response.status < 300, response.body


INVALID_BASE64 = {
    "not-base64": "this is not base64!",
    "bad-padding": "eyJhIjoxfQ=",
    "not-utf8": base64.b64encode(b'{"function_name": "\xff\xfe"}').decode(),
}


@pytest.mark.parametrize(("name", "method"), BODY_ROUTES)
def test_a_base64_body_that_does_not_decode_is_400(load_function, name, method):
    function = load_function(name)
    for case, encoded in INVALID_BASE64.items():
        event = function.event(method, good_body(name), base64_body=True)
        event["body"] = encoded
        error = assert_error(function.invoke(event), 400, "invalid_request")
        assert "base64" in error["message"], case


# -- AWS throttling or unreachable: 503 with Retry-After ------------------------------------

# (function, method, the AWS service it calls, the manager method it calls)
ROUTES = [
    ("get_metadata", "GET", "dynamodb", "get_session_metadata"),
    ("set_metadata", "PATCH", "dynamodb", "set_session_metadata"),
    ("set_metadata", "PUT", "dynamodb", "replace_session_metadata"),
    ("delete_metadata", "DELETE", "dynamodb", "delete_session_metadata"),
    ("create_token", "POST", "secretsmanager", "issue_token"),
    ("validate_token", "POST", "secretsmanager", "check_token"),
]
AWS_ROUTES = [(name, method, service) for name, method, service, _ in ROUTES]


@pytest.mark.parametrize(("name", "method", "service"), AWS_ROUTES)
def test_aws_throttling_after_retries_is_503(
    load_function, throttle, no_backoff, signing_key, name, method, service
):
    fault = throttle(service)
    function = load_function(name)
    assert_unavailable(function(method, real_body(name, signing_key)))
    # botocore retried, backing off between attempts, before the function gave up.
    assert fault.attempts >= 2
    assert no_backoff.count == fault.attempts - 1


@pytest.mark.parametrize(("name", "method", "service"), AWS_ROUTES)
def test_aws_unreachable_is_503(
    load_function, monkeypatch, no_backoff, signing_key, name, method, service
):
    # Set before the module loads: the manager's clients read it when they are created.
    # Port 9 (discard) refuses the connection at once; nothing leaves the machine.
    monkeypatch.setenv(aws_local.ENDPOINT_VARIABLES[service], "http://127.0.0.1:9")
    function = load_function(name)
    assert_unavailable(function(method, real_body(name, signing_key)))
    assert no_backoff.count >= 1  # retried before giving up


# -- unexpected exceptions: 500 with the request id and nothing else ------------------------

# (function, method, the manager method that fails)
MANAGER_CALLS = [(name, method, call) for name, method, _, call in ROUTES]

CALLER_DATA = "customer-ssn-078-05-1120"  # stands for whatever a caller sends


def assert_internal_error(response, event) -> None:
    error = assert_error(response, 500, "internal_error")
    assert request_id(event) in error["message"]


def assert_nothing_leaked(text: str, *secrets: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text  # a stack frame, however it is formatted
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize(("name", "method", "manager_method"), MANAGER_CALLS)
def test_an_unexpected_exception_is_a_500_that_leaks_nothing(
    load_function, output, monkeypatch, signing_key, name, method, manager_method
):
    function = load_function(name)
    body = dict(real_body(name, signing_key), note=CALLER_DATA)
    event = function.event(method, body)
    # The worst case: an exception whose message holds the key, the token and the body.
    leaky_message = f"failed with key={signing_key} body={event['body']}"

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(leaky_message)

    monkeypatch.setattr(function.manager, manager_method, fail)
    response = function.invoke(event)

    assert_internal_error(response, event)
    printed = output()
    secrets = [signing_key, CALLER_DATA, leaky_message, *body.values()]
    assert_nothing_leaked(response.text, *secrets)
    assert_nothing_leaked(printed.text, *secrets)
    # Logged once, as an error tied to the request, by type and place only.
    (log,) = printed.logs
    assert log["level"] == "ERROR"
    assert log["correlation_id"] == request_id(event)
    assert log["error_type"] == "RuntimeError"


@pytest.mark.parametrize(("name", "method", "service"), AWS_ROUTES)
def test_aws_refusing_the_call_is_a_500_not_a_caller_error(
    load_function, aws_error, signing_key, name, method, service
):
    """AccessDenied (an IAM mistake in the deployment) is not the caller's fault: 500."""
    fault = aws_error(service, "AccessDeniedException")
    function = load_function(name)
    event = function.event(method, real_body(name, signing_key))
    assert_internal_error(function.invoke(event), event)
    assert fault.attempts == 1  # not a transient error: not retried


@pytest.mark.parametrize("name", ["create_token", "validate_token"])
def test_a_short_signing_key_is_a_500_that_does_not_show_the_key(
    load_function, output, secretsmanager, secret, name
):
    short_key = "Short-Key-4f9a"  # under the 32 characters the contract requires
    secretsmanager.put_secret_value(SecretId=secret, SecretString=short_key)
    function = load_function(name)
    event = function.event("POST", real_body(name, "k" * 40))
    response = function.invoke(event)
    assert_internal_error(response, event)
    printed = output()
    assert_nothing_leaked(response.text + printed.text, short_key)
    (log,) = printed.logs
    assert log["correlation_id"] == request_id(event)
    assert log["error_type"] == "ConfigurationError"


def test_each_import_is_a_fresh_instance(import_function):
    """The fixture's promise (see conftest): a second import is a new module with a new
    manager, so no test inherits clients or a cached key from another."""
    first = import_function("get_metadata")
    second = import_function("get_metadata")
    assert first.module is not second.module
    assert first.manager is not second.manager


# -- errors carry their status and code -----------------------------------------------------


def test_every_error_the_layer_raises_answers_with_its_own_status_and_code():
    """endpoint() catches the layer's base error once: a new error class needs no new
    except clause, only its status and code."""
    from session_manager import errors
    from session_manager.http import endpoint

    raised: list[errors.SessionManagerError] = [
        errors.InvalidInputError("bad"),
        errors.NotFoundError("nowhere"),
        errors.MethodNotAllowedError("use GET", {"Allow": "GET"}),
        errors.TooLargeError("big"),
    ]
    for error in raised:

        def fail(_request: Any, error: Exception = error) -> tuple[int, Any]:
            raise error

        handler = endpoint("Test", routes=[("GET", "/x")])(fail)
        event = {"httpMethod": "GET", "path": "/x"}
        response = as_response(handler(event, LambdaContext(function_name="t")))
        assert (response.status, response.body) == (
            error.status,
            {"error": {"code": error.code, "message": str(error)}},
        )
        assert response.headers.items() >= error.headers.items()
