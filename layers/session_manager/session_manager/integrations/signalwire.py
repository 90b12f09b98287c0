"""Put a shared SessionManager into a SignalWire SDK agent.

Works with `signalwire` (signalwire-sdk) and `signalwire_agents`, without importing
either: the agents only ever reach their manager through `agent._session_manager`, so
swapping that attribute is the whole integration.

    from session_manager.integrations.signalwire import install

    agent = AgentBase(name="support")
    sessions = install(agent)          # SessionManager.from_env()
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..errors import InvalidInputError
from ..manager import SessionManager

logger = logging.getLogger(__name__)


def install(agent: Any, manager: SessionManager | None = None) -> SessionManager:
    """Make `agent` sign and validate its tool tokens with `manager` and return it.

    With no manager, one is built from the environment (SESSIONS_TABLE,
    SIGNING_SECRET_ID...). Keep the returned manager for session metadata in tool
    handlers: the SDK passes them the call id (`raw_data["call_id"]`), never metadata.
    """
    previous = getattr(agent, "_session_manager", None)
    if previous is None:
        # Setting the attribute on anything else would succeed silently and change nothing.
        raise TypeError(f"install() needs a SignalWire AgentBase, not {type(agent).__name__}")
    if manager is None:
        overrides: dict[str, Any] = {}
        expiry = getattr(previous, "token_expiry_secs", None)
        if not os.environ.get("TOKEN_EXPIRY_SECS") and isinstance(expiry, int):
            # AgentBase(token_expiry_secs=...) lives only in the manager being replaced.
            overrides["token_expiry_secs"] = expiry
        manager = SessionManager.from_env(**overrides)
    # Nothing else needs changing: the SDK mints tokens per render and caches none, and
    # the per-request copies it makes of an agent share this attribute by reference.
    # The agent's SIGNALWIRE_SWAIG_SECRET, if any, was only used to build `previous`.
    agent._session_manager = AgentSessionManager(manager)
    return manager


class AgentSessionManager:
    """The shared manager, answering every call as the SDK's own manager would.

    Everything is delegated except where the SDK's callers rely on its manager's
    contract beyond the method names.
    """

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    def __getattr__(self, name: str) -> Any:
        if name == "manager":  # not set yet (a copy being built): don't recurse
            raise AttributeError(name)
        return getattr(self.manager, name)

    # The SDK's debug switch is the shared manager's: setting it here (as code written
    # for the SDK does, on agent._session_manager) must reach the manager that answers.
    @property
    def _debug_mode(self) -> bool:
        return self.manager._debug_mode

    @_debug_mode.setter
    def _debug_mode(self, value: bool) -> None:
        self.manager._debug_mode = value

    def create_tool_token(self, function_name: str, call_id: str) -> str:
        # The SDK catches any error here and renders the SWML without the token, so the
        # AI can never call that tool. Say which function and which rule, loudly.
        try:
            return self.manager.create_tool_token(function_name, call_id)
        except InvalidInputError as error:
            logger.error(
                "no tool token for function %r: %s; the SWML will carry no token, so "
                "SignalWire cannot call this function",
                function_name,
                error,
            )
            raise

    generate_token = create_tool_token

    def validate_tool_token(self, function_name: str, token: str, call_id: str) -> bool:
        # The SDK's manager never raises here ("any exception means the token is
        # invalid") and its callers don't catch: a Secrets Manager outage on a cold
        # instance would otherwise answer SignalWire with a 500 carrying the error text.
        try:
            return self.manager.validate_tool_token(function_name, token, call_id)
        except Exception as error:
            # The type only: no stack trace or message, which could carry the token.
            logger.error("tool token could not be checked (%s); refusing it", type(error).__name__)
            return False

    def validate_token(self, call_id: str, function_name: str, token: str) -> bool:
        return self.validate_tool_token(function_name, token, call_id)
