"""The AuthMode parameter, proved by SAM itself: for each value, the template goes through
SAM CLI's own validation path (its local AWS::LanguageExtensions expansion with the
parameter values, then the SAM translator), and every route of the HTTP API that comes out
carries the chosen authorizer.

cfn-lint does not run the SAM transform, so it cannot see a template SAM would refuse (SAM
takes only a plain string as Auth.DefaultAuthorizer: the Fn::If must be resolved first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devtools import template

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
AUDIENCE = ["agent-client-1", "agent-client-2"]
JWT = {"AuthMode": "JWT", "JwtIssuer": ISSUER, "JwtAudience": ",".join(AUDIENCE)}
API_ID = "SessionsApi"


def routes(translated: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """(method, path) -> the route's security requirement, from the API's OpenAPI body."""
    body = translated["Resources"][API_ID]["Properties"]["Body"]
    return {
        (method.upper(), path): operation.get("security")
        for path, operations in body["paths"].items()
        for method, operation in operations.items()
    }


def security_schemes(translated: dict[str, Any]) -> dict[str, Any]:
    body = translated["Resources"][API_ID]["Properties"]["Body"]
    return body.get("components", {}).get("securitySchemes", {})


def template_routes() -> set[tuple[str, str]]:
    return {(r.method, r.path) for f in template.functions() for r in f.routes}


@pytest.fixture(scope="module")
def iam(translated: dict[str, Any]) -> dict[str, Any]:
    return translated  # the default: AuthMode IAM


@pytest.fixture(scope="module")
def jwt(sam_translate: Callable[[dict[str, str]], dict[str, Any]]) -> dict[str, Any]:
    return sam_translate(JWT)


def test_the_api_type_and_the_default_mode():
    assert template.load()["Resources"][API_ID]["Type"] == "AWS::Serverless::HttpApi"
    assert template.parameter_defaults()["AuthMode"] == "IAM"
    assert set(template.load()["Parameters"]["AuthMode"]["AllowedValues"]) == {"IAM", "JWT"}


def test_iam_mode_puts_aws_iam_on_every_route(iam):
    found = routes(iam)
    assert set(found) == template_routes()
    for route, security in found.items():
        assert security == [{"AWS_IAM": []}], route
    assert security_schemes(iam)["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    # No JWT authorizer made from the empty JWT parameters.
    assert not [s for s in security_schemes(iam).values() if "x-amazon-apigateway-authorizer" in s]


def test_jwt_mode_puts_the_jwt_authorizer_on_every_route(jwt):
    found = routes(jwt)
    assert set(found) == template_routes()
    schemes = security_schemes(jwt)
    for route, security in found.items():
        ((name, scopes),) = (requirement for entry in security for requirement in entry.items())
        assert scopes == [], route
        authorizer = schemes[name]["x-amazon-apigateway-authorizer"]
        assert authorizer == {
            "type": "jwt",
            "identitySource": "$request.header.Authorization",
            "jwtConfiguration": {"issuer": ISSUER, "audience": AUDIENCE},
        }, route


def test_both_modes_keep_every_function_behind_the_one_api(iam, jwt):
    """Only the authorizer changes: same resources, same integrations."""
    assert set(iam["Resources"]) == set(jwt["Resources"])
    for translated in (iam, jwt):
        apis = [
            logical_id
            for logical_id, resource in translated["Resources"].items()
            if resource["Type"] == "AWS::ApiGatewayV2::Api"
        ]
        assert apis == [API_ID]  # no implicit second API without an authorizer
