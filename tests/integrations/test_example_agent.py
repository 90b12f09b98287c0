"""examples/agent, driven as Lambda drives it, so the example cannot rot.

Each import of app.py under a new name is a new Lambda instance (a cold start).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from itertools import count
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from devtools import template
from local_api import process as local_api_process
from session_manager import SessionManager
from tests.integrations.agent_requests import (
    AGENT_URL,
    API_DOMAIN,
    SDK_VARIABLES,
    function_url,
    http_api_event,
    swaig_request,
    swml_request,
    token_in,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent"
CALL_ID = "7d0f6a52-93b1-4f8e-a3c4-2e9b1d5c7f60"
REFUSAL = "the security token for this function is invalid or expired"
TABLE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}"
    ":table/${SessionsTableName}"
}
_instances = count()


def cold_start() -> ModuleType:
    name = f"example_agent_app_{next(_instances)}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def invoke(instance: ModuleType, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = instance.handler(http_api_event("POST", url, body), None)
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every AWS API call made from here on, as IAM names it (dynamodb:GetItem)."""
    calls: set[str] = set()
    session = boto3.Session()
    session.events.register(
        "before-call",
        lambda model, **_: calls.add(f"{model.service_model.signing_name}:{model.name}"),
    )
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    return calls


def test_one_instance_renders_the_swml_and_another_runs_the_tool(lambda_env, table, signing_key):
    a, b = cold_start(), cold_start()

    swml = invoke(a, AGENT_URL, swml_request(CALL_ID))
    url = function_url(swml, "order_status")
    # The webhook points back at the API the request came through, with the agent's auth.
    assert url.startswith("https://signalwire:")
    assert url.split("@", 1)[1].startswith(f"{API_DOMAIN}/swaig/?__token=")

    first = invoke(b, url, swaig_request("order_status", CALL_ID, order="a-1001"))
    second = invoke(a, url, swaig_request("order_status", CALL_ID, order="A-1002"))

    assert first == {"response": "Order A-1001 is shipped on Monday."}
    assert second == {"response": "Order A-1002 is being packed."}
    # Each instance added to the same call's metadata.
    sessions = SessionManager(table_name=table, secret_key=signing_key)
    assert sessions.get_session_metadata(CALL_ID) == {"orders_asked": ["A-1001", "A-1002"]}


def test_the_token_is_refused_for_another_call(lambda_env):
    a, b = cold_start(), cold_start()
    url = function_url(invoke(a, AGENT_URL, swml_request(CALL_ID)), "order_status")
    assert token_in(url)

    result = invoke(b, url, swaig_request("order_status", "another-call", order="A-1001"))

    assert REFUSAL in result["response"]


def test_the_template_allows_every_aws_call_the_agent_makes_and_no_more(lambda_env, aws_calls):
    a = cold_start()
    url = function_url(invoke(a, AGENT_URL, swml_request(CALL_ID)), "order_status")
    invoke(a, url, swaig_request("order_status", CALL_ID, order="A-1001"))
    # The example never deletes, but a tool may: the policy allows it, so check it too.
    a.sessions.delete_session_metadata(CALL_ID)

    (function,) = [
        resource
        for resource in template.load(EXAMPLE / "template.yaml")["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    (policy,) = function["Properties"]["Policies"]
    allowed = {
        action: statement["Resource"]
        for statement in policy["Statement"]
        for action in _as_list(statement["Action"])
        if statement["Effect"] == "Allow"
    }

    assert aws_calls <= allowed.keys(), aws_calls - allowed.keys()
    assert allowed == {
        "dynamodb:GetItem": TABLE_ARN,
        "dynamodb:PutItem": TABLE_ARN,
        "dynamodb:UpdateItem": TABLE_ARN,
        "dynamodb:DeleteItem": TABLE_ARN,
        "secretsmanager:GetSecretValue": {"Ref": "SigningSecretArn"},
    }


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_the_example_refuses_to_start_without_shared_basic_auth(lambda_env, monkeypatch):
    monkeypatch.delenv("SWML_BASIC_AUTH_PASSWORD")
    with pytest.raises(RuntimeError, match="SWML_BASIC_AUTH_PASSWORD"):
        cold_start()


@pytest.mark.slow
def test_the_example_template_lints_clean():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # a dev dependency, in the venv
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [str(cfn_lint), str(EXAMPLE / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_example_builds_for_python313_on_arm64_without_docker(tmp_path):
    # Its dependencies have compiled parts: the wheels must be Lambda's, not this Python's.
    sam = Path(sys.executable).with_name("sam")
    build = tmp_path / "build"
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [str(sam), "build", "--build-dir", str(build), "--cache-dir", str(tmp_path / "cache")],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    function = build / "AgentFunction"
    assert (function / "app.py").is_file()
    assert (function / "signalwire").is_dir()
    compiled = list(function.rglob("*.so"))
    assert compiled
    assert all("aarch64" in p.name or "abi3" in p.name for p in compiled), compiled
    assert not [p for p in compiled if "cpython-311" in p.name]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST JSON as curl does for a URL with user:password@ in it (basic auth)."""
    parts = urlsplit(url)
    headers = {"content-type": "application/json"}
    if parts.username:
        credentials = f"{parts.username}:{parts.password}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(credentials).decode()
    plain = parts._replace(netloc=parts.hostname + f":{parts.port}").geturl()
    request = urllib.request.Request(plain, json.dumps(body).encode(), headers, method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@pytest.mark.slow
def test_make_agent_serves_the_example_beside_the_local_api_sharing_its_tokens():
    """The README's session against `make agent`: the SWML's token runs the tool and
    validates at the API; a token the API mints runs the tool; the API sees its metadata."""
    api_port, agent_port = _free_port(), _free_port()
    venv = Path(sys.prefix)  # this venv has the agent extra's packages: no install
    stamp = f"{venv}/.installed-agent"
    command = ["make", "--no-print-directory", "-o", stamp, f"VENV={venv}", "agent"]
    env = local_api_process.environment(api_port)
    for name in SDK_VARIABLES:
        env.pop(name, None)
    env["AGENT_PORT"] = str(agent_port)
    make = subprocess.Popen(  # noqa: S603 - fixed arguments
        command,
        cwd=EXAMPLE.parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        local_api_process.wait_until_listening(make, agent_port)
        api = f"http://127.0.0.1:{api_port}"
        agent = f"http://signalwire:local-agent-pass@127.0.0.1:{agent_port}/"

        url = function_url(_post(agent, {"call_id": "call-1"}), "order_status")
        assert url.startswith(f"{agent}swaig/?__token=")
        order = {"function": "order_status", "argument": {"parsed": [{"order": "A-1001"}]}}
        assert _post(url, {**order, "call_id": "call-1"}) == {
            "response": "Order A-1001 is shipped on Monday."
        }
        check = {"token": token_in(url), "call_id": "call-1", "function_name": "order_status"}
        assert _post(f"{api}/tokens/validate", check) == {"valid": True}

        minted = _post(f"{api}/sessions/call-2/tokens", {"function_name": "order_status"})
        tool = f"{agent}swaig/?__token={minted['token']}"
        assert _post(tool, {**order, "call_id": "call-2"}) == {
            "response": "Order A-1001 is shipped on Monday."
        }
        assert REFUSAL in _post(tool, {**order, "call_id": "call-1"})["response"]
        with urllib.request.urlopen(f"{api}/sessions/call-2/metadata", timeout=10) as answer:  # noqa: S310
            assert json.loads(answer.read())["metadata"] == {"orders_asked": ["A-1001"]}
    finally:
        with contextlib.suppress(ProcessLookupError):  # a group that is gone already
            os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        try:
            _, stderr = make.communicate(timeout=local_api_process.STOP_SECS)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.communicate()
            raise
    assert "stopped" in stderr.splitlines(), stderr  # it stopped, not killed
    with pytest.raises(ProcessLookupError):
        os.killpg(make.pid, 0)  # nothing of the group is left
