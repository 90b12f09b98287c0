"""devtools.local_agent's pieces: what `make agent` gives examples/agent (the whole command
runs in tests/integrations/test_example_agent.py)."""

from __future__ import annotations

from devtools import local_agent
from devtools.template import Route


def test_the_agent_function_is_read_from_the_examples_template():
    function = local_agent.agent_function()

    assert function.logical_id == "AgentFunction"
    assert function.code_dir == local_agent.EXAMPLE
    assert function.handler == "app.handler"
    assert set(function.routes) == {Route("ANY", "/"), Route("ANY", "/{proxy+}")}
    assert (function.timeout_secs, function.memory_mb) == (15, 512)


def test_the_agent_gets_the_apis_table_and_secret_and_its_templates_defaults():
    function = local_agent.agent_function()

    environment = local_agent.agent_environment(
        function, "SessionsTable", "SigningSecret", "http://127.0.0.1:3001", environ={}
    )

    assert environment == {
        "SESSIONS_TABLE": "SessionsTable",
        "SIGNING_SECRET_ID": "SigningSecret",
        "TOKEN_EXPIRY_SECS": "3600",
        "SESSION_TTL_SECS": "3600",
        "SWML_BASIC_AUTH_USER": "signalwire",
        "SWML_BASIC_AUTH_PASSWORD": "local-agent-pass",
        "SIGNALWIRE_SIGNING_KEY": "",
        "SWML_PROXY_URL_BASE": "http://127.0.0.1:3001",
    }


def test_what_the_shell_sets_wins():
    function = local_agent.agent_function()
    shell = {"SWML_BASIC_AUTH_PASSWORD": "my-own-password-123", "TOKEN_EXPIRY_SECS": "60"}

    environment = local_agent.agent_environment(
        function, "SessionsTable", "SigningSecret", "http://127.0.0.1:3001", environ=shell
    )

    assert environment["SWML_BASIC_AUTH_PASSWORD"] == "my-own-password-123"
    assert environment["TOKEN_EXPIRY_SECS"] == "60"
    url = local_agent.with_auth("http://127.0.0.1:3001/", environment)
    assert url == "http://signalwire:my-own-password-123@127.0.0.1:3001/"
