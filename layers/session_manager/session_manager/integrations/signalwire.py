"""Put a shared SessionManager into a SignalWire SDK agent.

Works with `signalwire` (signalwire-sdk) and `signalwire_agents`, without importing
either: the agents only ever reach their manager through `agent._session_manager`, so
swapping that attribute is the whole integration.

    from session_manager.integrations.signalwire import install

    agent = AgentBase(name="support")
    sessions = install(agent)          # SessionManager.from_env()

The SDK's own shared key (signalwire 3.7's `AgentBase(swaig_secret=...)` or
SIGNALWIRE_SWAIG_SECRET) is kept for a migration: by default tokens signed with it still
validate, beside the secret's keys, so replicas not yet switched keep working during a
rolling deploy (see `install`'s `swaig_secret`).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

from ..errors import ConfigurationError, InvalidInputError
from ..keys import MIN_KEY_CHARS, SigningKeys, key_bytes
from ..manager import SessionManager

logger = logging.getLogger(__name__)


SwaigSecretUse = Literal["verify", "adopt", "ignore"]


def install(
    agent: Any,
    manager: SessionManager | None = None,
    *,
    swaig_secret: SwaigSecretUse = "verify",  # noqa: S107 - what to do with it, not a key
) -> SessionManager:
    """Make `agent` sign and validate its tool tokens with `manager` and return it.

    With no manager, one is built from the environment (SESSIONS_TABLE,
    SIGNING_SECRET_ID...). Keep the returned manager for session metadata in tool
    handlers: the SDK passes them the call id (`raw_data["call_id"]`), never metadata.

    `swaig_secret`: what becomes of the key the agent was configured with
    (`AgentBase(swaig_secret=...)` or SIGNALWIRE_SWAIG_SECRET), if any, while replicas
    still on it run beside installed ones:
      - "verify" (default): tokens signed with it still validate, beside the secret's
        keys; new tokens are signed with the secret's key.
      - "adopt": it also signs new tokens, so replicas not yet switched accept them too
        (it must be 32 characters or more). Use it until the secret holds the same value.
      - "ignore": it is dropped; tokens signed with it are refused.
    A log line says which was done. Also changes `manager` when one is given.
    """
    previous = getattr(agent, "_session_manager", None)
    if previous is None:
        # Setting the attribute on anything else would succeed silently and change nothing.
        raise TypeError(f"install() needs a SignalWire AgentBase, not {type(agent).__name__}")
    if swaig_secret not in ("verify", "adopt", "ignore"):
        raise ValueError("swaig_secret must be 'verify', 'adopt' or 'ignore'")
    if manager is None:
        overrides: dict[str, Any] = {}
        expiry = getattr(previous, "token_expiry_secs", None)
        if not os.environ.get("TOKEN_EXPIRY_SECS") and isinstance(expiry, int):
            # AgentBase(token_expiry_secs=...) lives only in the manager being replaced.
            overrides["token_expiry_secs"] = expiry
        manager = SessionManager.from_env(**overrides)
    _keep_agent_key(manager, getattr(agent, "_swaig_secret", None), swaig_secret)
    # Nothing else needs changing: the SDK mints tokens per render and caches none, and
    # the per-request copies it makes of an agent share this attribute by reference.
    agent._session_manager = AgentSessionManager(manager)
    return manager


def _keep_agent_key(manager: SessionManager, agent_key: Any, use: SwaigSecretUse) -> None:
    """Give `manager` the agent's own key as `use` says, and log what was done (never
    the key). signalwire 3.7 keeps it as `agent._swaig_secret`; signalwire_agents has none."""
    if not isinstance(agent_key, str) or not agent_key:
        logger.info("install: the agent has no swaig_secret; tokens use the signing secret only")
        return
    if use == "ignore":
        logger.info(
            "install: the agent's swaig_secret is ignored: tokens signed with it are refused, "
            "only the signing secret's keys sign and validate"
        )
        return
    if use == "adopt":
        key = key_bytes(agent_key, "swaig_secret")  # refused under 32 characters
    else:
        key = agent_key.encode("utf-8")
        if len(agent_key) < MIN_KEY_CHARS:
            logger.warning(
                "install: the agent's swaig_secret is under %d characters: it cannot be "
                "copied into the signing secret; rotate to a new key once replicas switch",
                MIN_KEY_CHARS,
            )
    # The manager's own key source (None: it has none, which "adopt" makes up for).
    own: SigningKeys | None = manager._keys
    if own is None and use == "verify":
        raise ConfigurationError("no signing key: pass secret_key or set SIGNING_SECRET_ID")
    manager._keys = WithAgentKey(own, key, sign=use == "adopt")
    if use == "adopt":
        logger.info(
            "install: the agent's swaig_secret signs new tokens and validates, beside the "
            "signing secret's keys, until the secret holds the same value"
        )
    else:
        logger.info(
            "install: tokens signed with the agent's swaig_secret still validate, beside the "
            "signing secret's keys, which sign new tokens; drop it (swaig_secret='ignore' or "
            "unset it) once every replica runs install() and one token lifetime has passed"
        )


class WithAgentKey:
    """A manager's keys plus the agent's own: it validates and, with `sign`, signs."""

    def __init__(self, own: SigningKeys | None, agent_key: bytes, *, sign: bool) -> None:
        self._own, self._agent_key, self._sign = own, agent_key, sign

    def signing_key(self) -> bytes:
        if self._sign or self._own is None:
            return self._agent_key
        return self._own.signing_key()

    def verification_keys(self) -> list[bytes]:
        own = self._own.verification_keys() if self._own is not None else []
        return [*own, self._agent_key]

    def refresh(self) -> bool:
        return self._own.refresh() if self._own is not None else False


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
