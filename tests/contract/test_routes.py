"""Every route of the template answers; an unknown route is a 404 and a wrong method a
405 (the local gateway's, in the error envelope; API Gateway's own shape when deployed)."""

from __future__ import annotations

import pytest

from devtools import template

pytestmark = pytest.mark.slow


def test_every_template_route_reaches_its_function(api, new_session):
    """Each route of template.yaml is served: the answer comes from a function (API
    Gateway, and the local gateway as it does, add the request id), not a routing error."""
    routes = [route for function in template.functions() for route in function.routes]
    assert len(routes) >= 6
    for route in routes:
        path = route.path.replace("{session_id}", new_session())
        reply = api.request(route.method, path)
        assert reply.headers.get("apigw-requestid"), route
        assert reply.status not in (404, 405), (route, reply.body)


def test_unknown_route_is_404(api):
    for path in ("/nope", "/sessions", "/sessions//metadata", "/sessions/s1/metadata/x"):
        reply = api.get(path)
        assert reply.status == 404, path
        if api.local:  # deployed, API Gateway answers in its own shape
            assert reply.error_code == "not_found"
            assert reply.headers.get("Content-Type") == "application/json"


def test_wrong_method_is_405_with_allow_in_the_error_envelope(api):
    if not api.local:
        pytest.skip("deployed, API Gateway answers a method a path lacks with its own 404")
    reply = api.post("/sessions/s1/metadata", {"a": 1})
    assert reply.status == 405
    assert reply.error_code == "method_not_allowed"
    assert {m.strip() for m in reply.headers["Allow"].split(",")} == {
        "GET",
        "PATCH",
        "PUT",
        "DELETE",
    }

    reply = api.get("/tokens/validate")
    assert reply.status == 405
    assert reply.error_code == "method_not_allowed"
    assert reply.headers["Allow"] == "POST"
