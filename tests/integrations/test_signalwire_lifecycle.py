"""install(agent) honours the token lifecycle variables: an SDK agent's own validation
(the one its tool calls go through) refuses a replayed token and an ended call's tokens."""

from __future__ import annotations

from session_manager.integrations.signalwire import install
from tests.integrations.test_signalwire import CALL_ID, NEW, TOOL, new_instance


def test_install_reads_both_modes_from_the_environment(lambda_env, monkeypatch):
    monkeypatch.setenv("TOKEN_REVOCATION", "true")
    monkeypatch.setenv("SINGLE_USE_TOKENS", TOOL)
    a, b = new_instance(NEW), new_instance(NEW)
    sessions = install(a.agent)
    install(b.agent)
    assert (sessions.token_revocation, sessions.single_use_tokens) == (True, {TOOL})

    first = a.agent._session_manager.create_tool_token(TOOL, CALL_ID)
    assert b.agent._session_manager.validate_tool_token(TOOL, first, CALL_ID) is True
    assert a.agent._session_manager.validate_tool_token(TOOL, first, CALL_ID) is False

    second = a.agent._session_manager.create_tool_token(TOOL, CALL_ID)
    sessions.end_session(CALL_ID)
    assert b.agent._session_manager.validate_tool_token(TOOL, second, CALL_ID) is False
    assert sessions.check_token(CALL_ID, TOOL, second) == "revoked"
