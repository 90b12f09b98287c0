"""Side by side: the same calls on the SDKs' SessionManager and on ours, the same answers,
except for the departures the README lists ("Where we depart from the SDK").

The SDKs: `signalwire` 3.7 and `signalwire_agents` 1.1 (signalwire_agents splits tokens on
every dot, so no call id here has one; dotted ids are in test_sdk_interop.py). Ours holds
the same key in code and its metadata in the moto table. Time is pinned by patching
time.time, which both read at call time.
"""

from __future__ import annotations

import base64
import inspect
import logging
import time
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager
from signalwire_agents.core.security.session_manager import (
    SessionManager as AgentsSessionManager,
)

from session_manager import ConfigurationError, InvalidInputError, SessionManager
from session_manager.integrations.signalwire import AgentSessionManager

KEY = "parity-key-" + "0123456789abcdef" * 2  # 43 characters
FUNCTION = "lookup_order"
CALL = "3f1c2a9e-7d4b-4c1e-9a57-0b6e8d2f4c11"
NOW = 1_800_000_000.0


@pytest.fixture(params=[SdkSessionManager, AgentsSessionManager], ids=["signalwire", "agents"])
def sdk(request) -> Any:
    return request.param(secret_key=KEY)


@pytest.fixture
def ours(table) -> SessionManager:
    return SessionManager(secret_key=KEY, table_name=table)


@pytest.fixture
def frozen():
    """time.time pinned for both sides; `frozen.now` moves it."""

    class Clock:
        now = NOW

    with patch("time.time", lambda: Clock.now):
        yield Clock


def both(sdk: Any, ours: SessionManager, call: Any) -> tuple[Any, Any]:
    return call(sdk), call(ours)


# -- the same answers -----------------------------------------------------------------------


def test_constructor_attributes(sdk, ours):
    assert (sdk.token_expiry_secs, ours.token_expiry_secs) == (900, 900)
    assert sdk.secret_key == ours.secret_key == KEY
    assert sdk._debug_mode is ours._debug_mode is False
    assert SdkSessionManager(60, KEY).token_expiry_secs == SessionManager(60, KEY).token_expiry_secs


def test_create_session(sdk, ours):
    assert sdk.create_session(CALL) == ours.create_session(CALL) == CALL
    theirs, mine = both(sdk, ours, lambda m: m.create_session())
    assert len(theirs) == len(mine) == 22
    assert base64.urlsafe_b64decode(mine + "==") and base64.urlsafe_b64decode(theirs + "==")


def test_activate_and_end_session(sdk, ours):
    assert both(sdk, ours, lambda m: m.activate_session(CALL)) == (True, True)
    assert both(sdk, ours, lambda m: m.end_session(CALL)) == (True, True)


def test_set_and_get_metadata_answers(sdk, ours):
    assert both(sdk, ours, lambda m: m.set_session_metadata(CALL, "step", "greeting")) == (
        True,
        True,
    )
    assert both(sdk, ours, lambda m: m.get_session_metadata("never-written")) == ({}, {})


# Every public method of the SDKs' SessionManager, called by keyword: the keywords and a
# check of the two answers. A method the SDK adds fails the test until it is listed here.
def _same(theirs: Any, mine: Any, *_: Any) -> bool:
    return bool(theirs == mine)


def _tokens_cross_validate(theirs: str, mine: str, sdk: Any, ours: Any) -> bool:
    return sdk.validate_token(CALL, FUNCTION, mine) and ours.validate_token(CALL, FUNCTION, theirs)


BY_KEYWORD: dict[str, tuple[dict[str, Any], Any]] = {
    "create_session": ({"call_id": CALL}, _same),
    "generate_token": ({"function_name": FUNCTION, "call_id": CALL}, _tokens_cross_validate),
    "create_tool_token": ({"function_name": FUNCTION, "call_id": CALL}, _tokens_cross_validate),
    "activate_session": ({"call_id": CALL}, _same),
    "end_session": ({"call_id": CALL}, _same),
    "get_session_metadata": ({"call_id": "never-written"}, _same),
    "set_session_metadata": ({"call_id": CALL, "key": "step", "value": "greeting"}, _same),
    "debug_token": ({"token": "not-a-token"}, _same),
}


def _keyword_calls(sdk: Any) -> dict[str, dict[str, Any]]:
    """The keywords per method, a token minted by the SDK for those that take one."""
    token = sdk.generate_token(FUNCTION, CALL)
    calls = {name: dict(kwargs) for name, (kwargs, _) in BY_KEYWORD.items()}
    calls["validate_token"] = {"call_id": CALL, "function_name": FUNCTION, "token": token}
    calls["validate_tool_token"] = {"function_name": FUNCTION, "token": token, "call_id": CALL}
    return calls


def test_every_sdk_method_is_called_by_its_keywords_alike(sdk, ours, frozen):
    calls = _keyword_calls(sdk)
    public = {n for n, _ in inspect.getmembers(type(sdk), inspect.isfunction) if n[0] != "_"}
    assert public == set(calls), "list each SDK method's keywords in BY_KEYWORD"
    for name in sorted(public):
        parameters = set(inspect.signature(getattr(type(sdk), name)).parameters) - {"self"}
        assert set(calls[name]) == parameters, name
        check = BY_KEYWORD.get(name, (None, _same))[1]
        for mine_side in (ours, AgentSessionManager(ours)):
            theirs = getattr(sdk, name)(**calls[name])
            mine = getattr(mine_side, name)(**calls[name])
            assert check(theirs, mine, sdk, ours), (name, theirs, mine)


def test_our_former_keyword_names_still_work(ours):
    assert ours.set_session_metadata(session_id=CALL, metadata={"a": 1}) == {"a": 1}
    assert ours.set_session_metadata(CALL, key={"b": 2}) == {"a": 1, "b": 2}
    assert ours.get_session_metadata(session_id=CALL) == {"a": 1, "b": 2}
    with pytest.raises(TypeError):
        ours.get_session_metadata(CALL, session_id=CALL)
    with pytest.raises(TypeError):
        ours.set_session_metadata(CALL)


def token_cases(minted_by: Any, frozen: Any) -> dict[str, tuple[str, str, str]]:
    """(call id, function, token) per case, each token minted at NOW by `minted_by`."""
    token = minted_by.generate_token(FUNCTION, CALL)
    raw = base64.urlsafe_b64decode(token).decode()
    tampered = base64.urlsafe_b64encode((raw[:-1] + ("0" if raw[-1] != "0" else "1")).encode())
    return {
        "right": (CALL, FUNCTION, token),
        "alias": (CALL, FUNCTION, minted_by.create_tool_token(FUNCTION, CALL)),
        "wrong call": ("another-call", FUNCTION, token),
        "wrong function": (CALL, "other_function", token),
        "no call id": ("", FUNCTION, token),
        "tampered signature": (CALL, FUNCTION, tampered.decode()),
        "other key": (
            CALL,
            FUNCTION,
            SdkSessionManager(secret_key="o" * 40).generate_token(FUNCTION, CALL),
        ),
        "garbage": (CALL, FUNCTION, "not-a-token"),
        "empty": (CALL, FUNCTION, ""),
        "four parts": (CALL, FUNCTION, base64.urlsafe_b64encode(b"a.b.c.d").decode()),
    }


@pytest.mark.parametrize("minter", ["sdk", "ours"])
def test_validate_token_answers_alike(sdk, ours, frozen, minter):
    cases = token_cases(sdk if minter == "sdk" else ours, frozen)
    for elapsed in (0, 899, 900, 901):  # the SDK refuses only past the expiry second
        frozen.now = NOW + elapsed
        for case, (call_id, function, token) in cases.items():
            answers = (
                sdk.validate_token(call_id, function, token),
                ours.validate_token(call_id, function, token),
            )
            assert answers[0] == answers[1], (case, elapsed, answers)
            tool = (
                sdk.validate_tool_token(function, token, call_id),
                ours.validate_tool_token(function, token, call_id),
            )
            assert tool == answers, (case, elapsed)
            expected = case in ("right", "alias") and elapsed <= 900
            assert answers[0] is expected, (case, elapsed)


def test_patching_time_time_moves_both_clocks(sdk, ours, frozen):
    def expiry(token: str) -> int:
        return int(base64.urlsafe_b64decode(token).decode().rsplit(".", 4)[2])

    theirs, mine = both(sdk, ours, lambda m: m.generate_token(FUNCTION, CALL))
    assert expiry(theirs) == expiry(mine) == int(NOW) + 900


def test_debug_token_off_answers_alike(sdk, ours):
    token = ours.generate_token(FUNCTION, CALL)
    assert both(sdk, ours, lambda m: m.debug_token(token)) == (
        {"error": "debug mode not enabled"},
        {"error": "debug mode not enabled"},
    )


@pytest.mark.parametrize("call_id", [CALL, "short", "12345678", "123456789"])
def test_debug_token_on_answers_alike(sdk, ours, frozen, call_id):
    sdk._debug_mode = ours._debug_mode = True
    token = sdk.generate_token(FUNCTION, call_id)
    for elapsed in (0, 900, 901):
        frozen.now = NOW + elapsed
        theirs, mine = both(sdk, ours, lambda m: m.debug_token(token))
        assert mine == theirs, elapsed
    # Never the whole signature, and a long call id shortened as the SDK does.
    assert base64.urlsafe_b64decode(token).decode().rsplit(".", 1)[1] not in str(mine)
    assert mine["components"]["call_id"] == (call_id[:8] + "..." if len(call_id) > 8 else call_id)


@pytest.mark.parametrize("token", ["not-a-token", "abcde"])
def test_debug_token_on_a_token_that_does_not_decode_answers_alike_but_the_message(
    sdk, ours, token
):
    sdk._debug_mode = ours._debug_mode = True
    theirs, mine = both(sdk, ours, lambda m: m.debug_token(token))
    assert set(mine) == set(theirs) == {"valid_format", "error", "token_length"}
    assert mine["valid_format"] is theirs["valid_format"] is False
    assert mine["token_length"] == theirs["token_length"]


def test_the_installed_agent_manager_answers_debug_token_as_the_sdk(sdk, ours, frozen):
    wrapped = AgentSessionManager(ours)
    token = sdk.generate_token(FUNCTION, CALL)
    assert wrapped.debug_token(token) == sdk.debug_token(token)
    wrapped._debug_mode = sdk._debug_mode = True  # as SDK code sets it, on the agent's manager
    assert ours._debug_mode is True
    assert wrapped.debug_token(token) == sdk.debug_token(token)


# -- the departures (README: "Where we depart from the SDK") --------------------------------


def test_departure_no_arguments_reads_the_environment_instead_of_drawing_a_random_key(
    monkeypatch,
):
    for name in ("SIGNING_SECRET_ID", "SESSIONS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    assert len(SdkSessionManager().secret_key) == 64  # random: no other instance has it
    with pytest.raises(ConfigurationError):
        SessionManager()


@pytest.mark.parametrize("key", ["", "short-key", "k" * 31])
def test_departure_a_key_under_32_characters_is_refused(key):
    assert SdkSessionManager(secret_key="k" * 31).generate_token(FUNCTION, CALL)
    with pytest.raises(ConfigurationError):
        SessionManager(secret_key=key)


@pytest.mark.parametrize(
    ("function", "call_id"),
    [
        ("has:colon", CALL),  # could be re-split into another (call, function) pair
        ("has.dot", CALL),
        ("1starts_with_digit", CALL),
        ("f" * 65, CALL),
        (FUNCTION, "has space"),
        (FUNCTION, "has:colon"),
        (FUNCTION, "c" * 129),
        (FUNCTION, ""),
    ],
)
def test_departure_function_names_and_call_ids_our_rules_refuse(sdk, ours, function, call_id):
    assert sdk.generate_token(function, call_id)  # the SDK mints anything
    with pytest.raises(InvalidInputError):
        ours.generate_token(function, call_id)


def test_departure_metadata_is_kept(sdk, ours):
    both(sdk, ours, lambda m: m.set_session_metadata(CALL, "step", "greeting"))
    theirs, mine = both(sdk, ours, lambda m: m.get_session_metadata(CALL))
    assert (theirs, mine) == ({}, {"step": "greeting"})  # the SDK's manager keeps nothing
    ours.set_session_metadata(CALL, "step", None)  # None removes the key
    assert ours.get_session_metadata(CALL) == {}


@pytest.mark.parametrize("text", [b"a.b.c", b"", b"x:y.f.1800000000.nonce.sig"])
def test_departure_debug_token_on_a_token_that_decodes_but_is_not_ours(sdk, ours, text):
    """The SDK reports how far it parsed (parts_count, or the fields of anything with five
    dots); ours answers every token it would refuse as malformed alike."""
    sdk._debug_mode = ours._debug_mode = True
    token = base64.urlsafe_b64encode(text).decode()
    assert sdk.debug_token(token) != ours.debug_token(token)
    assert ours.debug_token(token) == {
        "valid_format": False,
        "error": ours.debug_token("x")["error"],
        "token_length": len(token),
    }


def test_departure_an_agent_logs_the_function_it_could_not_mint_for(ours, caplog):
    wrapped = AgentSessionManager(ours)
    with caplog.at_level(logging.ERROR), pytest.raises(InvalidInputError):
        wrapped.create_tool_token("bad:name", CALL)
    (record,) = caplog.records
    assert "'bad:name'" in record.getMessage()
    assert "function name must match" in record.getMessage()


def test_cleanup_exists_only_here_and_follows_the_typescript_sdk(ours):
    assert not hasattr(SdkSessionManager, "cleanup")
    ours.set_session_metadata(CALL, {"a": 1})
    assert ours.cleanup() == 0  # written less than a token lifetime ago
    assert ours.cleanup(0) == 1  # every session, as cleanup(0) in the TypeScript SDK


class OneItemPages:
    """A DynamoDB client whose Scan pages hold one item each, to count pages on a small table."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.scans = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def scan(self, **kwargs: Any) -> Any:
        self.scans += 1
        return self._client.scan(**kwargs, Limit=1)


def test_cleanup_reads_at_most_max_pages(table, dynamodb):
    client = OneItemPages(dynamodb)
    manager = SessionManager(secret_key=KEY, table_name=table, dynamodb_client=client)
    for n in range(3):
        manager.set_session_metadata(f"call-{n}", {"n": n})
    assert manager.cleanup(0, max_pages=2) == 2
    assert client.scans == 2
    assert manager.cleanup(0, max_pages=None) == 1


def test_cleanup_starts_nothing_once_its_time_budget_is_spent(ours):
    for n in range(3):
        ours.set_session_metadata(f"call-{n}", {"n": n})

    class Clock:  # time.monotonic, moving a minute at each reading
        now = 0.0

        def __call__(self) -> float:
            self.now += 60.0
            return self.now

    # Only the manager's clock: the layer's AWS deadline (aws.py) reads the real one.
    with patch("session_manager.manager.time", SimpleNamespace(time=time.time, monotonic=Clock())):
        assert ours.cleanup(0, time_budget_secs=10) == 0
    assert ours.cleanup(0, time_budget_secs=None) == 3


@pytest.mark.parametrize("bounds", [{"max_pages": 0}, {"time_budget_secs": 0}])
def test_cleanup_refuses_bounds_that_allow_nothing(ours, bounds):
    with pytest.raises(InvalidInputError):
        ours.cleanup(**bounds)


def test_departure_end_session_deletes_the_metadata(sdk, ours):
    """The SDK's end_session does nothing; ours ends the session's state (one DeleteItem)."""
    ours.set_session_metadata(CALL, {"step": 1})
    assert both(sdk, ours, lambda m: m.end_session(CALL)) == (True, True)
    assert ours.get_session_metadata(CALL) == {}


def test_time_is_not_read_at_import(sdk, ours):
    # The point of reading the clock at call time: a patch made after import still works.
    with patch("time.time", lambda: NOW):
        assert time.time() == NOW
        assert ours.issue_token(FUNCTION, CALL)[1] == int(NOW) + 900
