"""install() with the real SDK packages, used as a user would.

Two agents built from the same code stand for two Lambda instances of one function:
instance A renders the SWML for a call, and the SWAIG function call that the SWML leads
to lands on instance B.

- signalwire (signalwire-sdk): both requests go through the SDK's own Lambda entry
  point, `handle_serverless_request(event, context, mode="lambda")`.
- signalwire_agents: its Lambda entry point neither renders the SWML for the call the
  request names nor checks tool tokens at all (see the last tests), so the same flow runs
  through its FastAPI app, which is what that package documents for Lambda (Mangum).
  That app refuses a wrong token but, unlike signalwire, runs a secure tool called
  with no token at all (also shown below).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

import pytest

from session_manager import ConfigurationError, SessionManager, tokens
from session_manager.integrations.signalwire import install
from tests.integrations.agent_requests import (
    AGENT_URL,
    API_DOMAIN,
    function_url,
    http_api_event,
    swaig_request,
    swml_request,
    token_in,
)

CALL_ID = "3f1c2a9e-7d4b-4c1e-9a57-0b6e8d2f4c11"
OTHER_CALL_ID = "b0e7d5c3-1a2f-4e8b-8c6d-5f4a3b2c1d0e"
TOOL = "order_status"
REFUSAL = "the security token for this function is invalid or expired"


# -- the two packages ----------------------------------------------------------------


@dataclass(frozen=True)
class Sdk:
    module: str
    result_class: str

    def load(self) -> tuple[type, type]:
        package = import_module(self.module)
        return package.AgentBase, getattr(package, self.result_class)


NEW = Sdk("signalwire", "FunctionResult")
OLD = Sdk("signalwire_agents", "SwaigFunctionResult")


@dataclass
class Instance:
    """One Lambda instance: the agent and, once installed, the manager install() gave."""

    agent: Any
    sessions: SessionManager | None = None


def new_instance(sdk: Sdk) -> Instance:
    """The agent module a user deploys: a secure tool that reads the call's metadata."""
    agent_class, result_class = sdk.load()
    instance = Instance(agent_class(name="orders", route="/", suppress_logs=True))
    instance.agent.set_prompt_text("You tell callers where their order is.")

    def order_status(args: dict[str, Any], raw_data: dict[str, Any]) -> Any:
        call_id = raw_data.get("call_id")
        metadata = instance.sessions.get_session_metadata(call_id) if instance.sessions else {}
        answer = {"call_id": call_id, "order": args.get("order"), "metadata": metadata}
        return result_class(json.dumps(answer))

    instance.agent.define_tool(
        name=TOOL,
        description="Where an order is",
        parameters={"order": {"type": "string", "description": "order number"}},
        handler=order_status,
        secure=True,
    )
    return instance


def installed(instance: Instance, manager: SessionManager | None = None) -> Instance:
    instance.sessions = install(instance.agent, manager)
    return instance


# -- the two ways a request reaches an agent -----------------------------------------


class LambdaEntryPoint:
    """The SDK's own Lambda adapter, fed API Gateway HTTP API events."""

    def request(self, agent: Any, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        event = http_api_event("POST", url, body)
        response = agent.handle_serverless_request(event, None, mode="lambda")
        return response["statusCode"], json.loads(response["body"])


class FastApiApp:
    """The agent's ASGI app, called as an ASGI server (or Mangum on Lambda) calls it."""

    def request(self, agent: Any, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = urlsplit(url)
        raw = json.dumps(body).encode()
        credentials = base64.b64encode(f"{parts.username}:{parts.password}".encode())
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "https",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [
                (b"host", parts.hostname.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"authorization", b"Basic " + credentials),
            ],
            "server": (parts.hostname, 443),
            "client": ("203.0.113.9", 50000),
        }
        incoming = [{"type": "http.request", "body": raw, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(agent.get_app()(scope, receive, send))
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, json.loads(payload)


@dataclass
class Flow:
    sdk: Sdk
    transport: LambdaEntryPoint | FastApiApp

    def instance(self) -> Instance:
        return new_instance(self.sdk)

    def render_swml(self, instance: Instance, call_id: str) -> dict[str, Any]:
        """What SignalWire gets when the call starts: the SWML, fetched with the call id."""
        status, swml = self.transport.request(instance.agent, AGENT_URL, swml_request(call_id))
        assert status == 200
        return swml

    def call_tool(self, instance: Instance, url: str, call_id: str | None) -> dict[str, Any]:
        """What SignalWire posts when the AI calls the tool: to the URL the SWML gave."""
        status, result = self.transport.request(
            instance.agent, url, swaig_request(TOOL, call_id, order="A-1001")
        )
        assert status == 200
        return result


@pytest.fixture(
    params=[
        pytest.param(NEW, id="signalwire-lambda"),
        pytest.param(OLD, id="signalwire_agents-asgi"),
    ]
)
def flow(request: pytest.FixtureRequest, lambda_env, monkeypatch) -> Flow:
    # The SWML's webhook URLs point at the API, as SWML_PROXY_URL_BASE tells the SDK.
    monkeypatch.setenv("SWML_PROXY_URL_BASE", f"https://{API_DOMAIN}")
    transport = LambdaEntryPoint() if request.param is NEW else FastApiApp()
    return Flow(request.param, transport)


def ran(result: dict[str, Any]) -> dict[str, Any]:
    """The tool's own answer; fails with the agent's reply when the tool did not run."""
    assert REFUSAL not in result["response"], result
    return json.loads(result["response"])


# -- the bug, and the fix ------------------------------------------------------------


def test_without_install_another_instance_refuses_the_token(flow: Flow):
    a, b = flow.instance(), flow.instance()
    url = function_url(flow.render_swml(a, CALL_ID), TOOL)
    assert tokens.parse(token_in(url)).call_id == CALL_ID

    # The request is right: the instance that minted the token runs the tool...
    assert ran(flow.call_tool(a, url, CALL_ID))["call_id"] == CALL_ID
    # ...but the next Lambda instance has a random key of its own.
    assert REFUSAL in flow.call_tool(b, url, CALL_ID)["response"]


def test_with_install_another_instance_runs_the_tool_for_that_call(flow: Flow):
    a, b = installed(flow.instance()), installed(flow.instance())
    url = function_url(flow.render_swml(a, CALL_ID), TOOL)
    a.sessions.set_session_metadata(CALL_ID, {"customer": "Ada", "verified": True})

    answer = ran(flow.call_tool(b, url, CALL_ID))

    assert answer == {
        "call_id": CALL_ID,
        "order": "A-1001",
        "metadata": {"customer": "Ada", "verified": True},
    }


@pytest.mark.parametrize(
    "call_id", [OTHER_CALL_ID, f"{CALL_ID}.2", None], ids=["other", "child", "none"]
)
def test_with_install_the_token_is_refused_for_any_other_call(flow: Flow, call_id):
    a, b = installed(flow.instance()), installed(flow.instance())
    url = function_url(flow.render_swml(a, CALL_ID), TOOL)

    assert REFUSAL in flow.call_tool(b, url, call_id)["response"]
    assert REFUSAL in flow.call_tool(a, url, call_id)["response"]


@pytest.mark.parametrize("sdk", [NEW, OLD], ids=["signalwire", "signalwire_agents"])
def test_metadata_set_through_one_agent_is_read_through_another(lambda_env, sdk: Sdk):
    a, b = installed(new_instance(sdk)), installed(new_instance(sdk))

    # The SDK's own (session_id, key, value) form, through the manager the agent holds.
    assert a.agent._session_manager.set_session_metadata(CALL_ID, "step", "verified") is True
    a.sessions.set_session_metadata(CALL_ID, {"cart": [{"sku": "X1", "qty": 2}]})

    expected = {"step": "verified", "cart": [{"sku": "X1", "qty": 2}]}
    assert b.agent._session_manager.get_session_metadata(CALL_ID) == expected
    assert b.sessions.get_session_metadata(CALL_ID) == expected
    assert b.sessions.get_session_metadata(OTHER_CALL_ID) == {}


def test_an_instance_that_cannot_read_the_key_refuses_the_call_instead_of_failing(
    lambda_env, table
):
    """The SDK's own manager never raises while validating, and the SDK relies on it:
    unguarded, this request is answered with a 500 carrying the error's text."""
    flow = Flow(NEW, LambdaEntryPoint())
    a = installed(flow.instance())
    b = installed(flow.instance(), SessionManager(table_name=table, secret_id="gone"))
    url = function_url(flow.render_swml(a, CALL_ID), TOOL)

    status, result = flow.transport.request(b.agent, url, swaig_request(TOOL, CALL_ID))

    assert status == 200
    assert REFUSAL in result["response"]


# -- install() itself ----------------------------------------------------------------


@pytest.mark.parametrize("sdk", [NEW, OLD], ids=["signalwire", "signalwire_agents"])
def test_install_without_a_manager_configures_one_from_the_environment(
    lambda_env, table, signing_key, sdk: Sdk
):
    instance = new_instance(sdk)

    sessions = install(instance.agent)

    assert isinstance(sessions, SessionManager)
    # The key is the one in the secret that SIGNING_SECRET_ID names...
    token = instance.agent._session_manager.create_tool_token(TOOL, CALL_ID)
    by_hand = SessionManager(secret_key=signing_key, table_name=table)
    assert by_hand.validate_token(CALL_ID, TOOL, token)
    # ...and the metadata lands in the table that SESSIONS_TABLE names.
    sessions.set_session_metadata(CALL_ID, {"lang": "fr"})
    assert by_hand.get_session_metadata(CALL_ID) == {"lang": "fr"}


def test_install_without_a_manager_needs_the_environment(lambda_env, monkeypatch):
    monkeypatch.delenv("SESSIONS_TABLE")
    with pytest.raises(ConfigurationError, match="SESSIONS_TABLE"):
        install(new_instance(NEW).agent)


def test_install_with_a_manager_uses_that_manager(lambda_env, table, signing_key):
    instance = new_instance(NEW)
    own_key = "a-key-of-this-agents-own-0123456789abcdef"
    manager = SessionManager(secret_key=own_key, table_name=table)

    assert install(instance.agent, manager) is manager

    token = instance.agent._session_manager.create_tool_token(TOOL, CALL_ID)
    assert manager.validate_token(CALL_ID, TOOL, token)
    assert not SessionManager(secret_key=signing_key).validate_token(CALL_ID, TOOL, token)


@pytest.mark.parametrize("environment, expected", [(None, 120), ("600", 600)])
def test_install_keeps_the_agents_token_lifetime_unless_the_environment_sets_one(
    lambda_env, monkeypatch, environment, expected
):
    if environment is None:
        monkeypatch.delenv("TOKEN_EXPIRY_SECS", raising=False)
    else:
        monkeypatch.setenv("TOKEN_EXPIRY_SECS", environment)
    agent_class, _ = NEW.load()
    agent = agent_class(name="orders", token_expiry_secs=120, suppress_logs=True)

    assert install(agent).token_expiry_secs == expected


def test_install_refuses_what_is_not_an_agent(lambda_env):
    with pytest.raises(TypeError, match="AgentBase"):
        install(object())


@pytest.mark.parametrize("sdk", [NEW, OLD], ids=["signalwire", "signalwire_agents"])
def test_a_token_is_refused_when_the_request_names_no_call_as_the_sdk_refuses_it(
    lambda_env, signing_key, sdk: Sdk
):
    """The agent's public validate_tool_token falls back to the call id that debug_token
    decodes when the request has none; the SDK's manager decodes nothing (debug mode is
    off), so that fallback never accepts a token. install() keeps it that way."""
    stock = new_instance(sdk)  # the SDK's own manager, with the same key
    sdk_manager = import_module(f"{sdk.module}.core.security.session_manager").SessionManager
    stock.agent._session_manager = sdk_manager(secret_key=signing_key)
    ours = installed(new_instance(sdk))
    token = ours.agent._session_manager.create_tool_token(TOOL, CALL_ID)

    for instance in (stock, ours):
        assert instance.agent.validate_tool_token(TOOL, token, CALL_ID)
        assert not instance.agent.validate_tool_token(TOOL, token, "")
        assert not instance.agent.validate_tool_token(TOOL, "not-a-token", CALL_ID)


def test_debug_token_answers_as_the_sdks_manager_does(lambda_env):
    manager = installed(new_instance(NEW)).agent._session_manager
    token = manager.create_tool_token(TOOL, CALL_ID)

    assert manager.debug_token(token) == {"error": "debug mode not enabled"}
    manager._debug_mode = True
    info = manager.debug_token(token)
    assert info["valid_format"] is True
    assert info["components"]["function"] == TOOL
    assert info["components"]["call_id"] == CALL_ID[:8] + "..."
    assert manager.debug_token("not-a-token")["valid_format"] is False


# -- what signalwire_agents' Lambda entry point does ---------------------------------


def test_signalwire_agents_lambda_entry_point_ignores_the_call_and_checks_no_token(
    lambda_env, monkeypatch
):
    """Why the signalwire_agents flow above goes through its FastAPI app: on its own
    Lambda path, install() shares the key and the metadata, but that path mints tokens
    for a call id of its own and runs a secure tool whatever token comes with it."""
    monkeypatch.setenv("SWML_PROXY_URL_BASE", f"https://{API_DOMAIN}")
    b = installed(new_instance(OLD))

    event = http_api_event("POST", AGENT_URL, swml_request(CALL_ID))
    swml = json.loads(b.agent.handle_serverless_request(event, None, mode="lambda")["body"])
    minted_for = tokens.parse(token_in(function_url(swml, TOOL))).call_id
    assert minted_for != CALL_ID

    forged = f"{AGENT_URL}swaig/?__token=forged"
    event = http_api_event("POST", forged, swaig_request(TOOL, CALL_ID, order="A-1001"))
    result = json.loads(b.agent.handle_serverless_request(event, None, mode="lambda")["body"])
    assert ran(result)["call_id"] == CALL_ID


def test_signalwire_agents_web_app_runs_a_secure_tool_called_without_a_token(
    lambda_env, monkeypatch
):
    """Only a token that is sent is checked there: install() can't change that."""
    monkeypatch.setenv("SWML_PROXY_URL_BASE", f"https://{API_DOMAIN}")
    no_token = f"{AGENT_URL}swaig/"
    old, new = Flow(OLD, FastApiApp()), Flow(NEW, LambdaEntryPoint())

    assert ran(old.call_tool(installed(old.instance()), no_token, CALL_ID))["call_id"] == CALL_ID
    # The same request to a signalwire agent is refused.
    assert REFUSAL in new.call_tool(installed(new.instance()), no_token, CALL_ID)["response"]


# -- the SDK's own shared key (swaig_secret / SIGNALWIRE_SWAIG_SECRET) ----------------------

SWAIG_SECRET = "the-sdk-shared-swaig-secret-0123456789"  # 38 characters


def replica_on_the_sdk_key(**kwargs: Any) -> Any:
    """A replica not yet switched: signalwire 3.7's AgentBase with its fixed key."""
    agent_class, _ = NEW.load()
    return agent_class(name="orders", route="/", suppress_logs=True, **kwargs)


@pytest.mark.parametrize("configured", ["argument", "environment"])
def test_install_keeps_tokens_signed_with_the_agents_swaig_secret_valid(
    lambda_env, monkeypatch, table, signing_key, caplog, configured
):
    if configured == "environment":
        monkeypatch.setenv("SIGNALWIRE_SWAIG_SECRET", SWAIG_SECRET)
        agent = replica_on_the_sdk_key()
    else:
        agent = replica_on_the_sdk_key(swaig_secret=SWAIG_SECRET)
    old_token = replica_on_the_sdk_key(
        swaig_secret=SWAIG_SECRET
    )._session_manager.create_tool_token(TOOL, CALL_ID)

    with caplog.at_level(logging.INFO, logger="session_manager.integrations.signalwire"):
        install(agent)

    assert agent._session_manager.validate_tool_token(TOOL, old_token, CALL_ID)
    # New tokens are the secret's: an instance holding only the secret accepts them.
    new_token = agent._session_manager.create_tool_token(TOOL, CALL_ID)
    assert SessionManager(secret_key=signing_key).validate_token(CALL_ID, TOOL, new_token)
    (line,) = [r.getMessage() for r in caplog.records if "swaig_secret" in r.getMessage()]
    assert "still validate" in line and SWAIG_SECRET not in line


def test_install_adopting_the_swaig_secret_signs_with_it_for_replicas_not_yet_switched(
    lambda_env, signing_key, caplog
):
    agent = replica_on_the_sdk_key(swaig_secret=SWAIG_SECRET)
    not_switched = replica_on_the_sdk_key(swaig_secret=SWAIG_SECRET)

    with caplog.at_level(logging.INFO, logger="session_manager.integrations.signalwire"):
        install(agent, swaig_secret="adopt")

    token = agent._session_manager.create_tool_token(TOOL, CALL_ID)
    assert not_switched._session_manager.validate_tool_token(TOOL, token, CALL_ID)
    # Tokens of replicas already on the secret still validate here.
    secrets_token = SessionManager(secret_key=signing_key).generate_token(TOOL, CALL_ID)
    assert agent._session_manager.validate_tool_token(TOOL, secrets_token, CALL_ID)
    assert any("signs new tokens" in r.getMessage() for r in caplog.records)


def test_install_adopting_refuses_a_swaig_secret_under_32_characters(lambda_env):
    agent = replica_on_the_sdk_key(swaig_secret="short-secret")
    with pytest.raises(ConfigurationError, match="32"):
        install(agent, swaig_secret="adopt")


def test_install_verifying_a_short_swaig_secret_warns_that_it_cannot_be_copied(lambda_env, caplog):
    agent = replica_on_the_sdk_key(swaig_secret="short-secret")
    old_token = replica_on_the_sdk_key(swaig_secret="short-secret")._session_manager.generate_token(
        TOOL, CALL_ID
    )
    with caplog.at_level(logging.WARNING, logger="session_manager.integrations.signalwire"):
        install(agent)
    assert agent._session_manager.validate_tool_token(TOOL, old_token, CALL_ID)
    assert any("under 32 characters" in r.getMessage() for r in caplog.records)


def test_install_ignoring_the_swaig_secret_refuses_its_tokens_and_says_so(lambda_env, caplog):
    agent = replica_on_the_sdk_key(swaig_secret=SWAIG_SECRET)
    old_token = agent._session_manager.create_tool_token(TOOL, CALL_ID)
    with caplog.at_level(logging.INFO, logger="session_manager.integrations.signalwire"):
        install(agent, swaig_secret="ignore")
    assert not agent._session_manager.validate_tool_token(TOOL, old_token, CALL_ID)
    assert any("ignored" in r.getMessage() for r in caplog.records)
