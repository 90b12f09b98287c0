"""Fixtures for the SignalWire agent tests; the requests themselves are in agent_requests.py."""

from __future__ import annotations

import pytest

from tests.integrations.agent_requests import BASIC_AUTH, SDK_VARIABLES


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    """The session table and secret (moto), plus what a Lambda deployment of an agent sets.

    Basic auth is fixed: left to the SDK, every instance would make up its own password
    and refuse the URLs another instance wrote into the SWML, as it does tokens.
    """
    for name in SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "support-agent")
    monkeypatch.setenv("SWML_BASIC_AUTH_USER", BASIC_AUTH[0])
    monkeypatch.setenv("SWML_BASIC_AUTH_PASSWORD", BASIC_AUTH[1])
    return env
