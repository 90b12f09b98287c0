"""session_manager.ledger and the manager's token lifecycle modes on moto: revocation when
a call ends, single-use tokens, and what each costs in AWS calls per validation."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from session_manager import ConfigurationError, SessionManager, aws, ledger, tokens
from session_manager.ledger import CLOCK_SKEW_SECS, TokenLedger
from session_manager.validation import check_session_id

FUNCTION = "get_weather"


@pytest.fixture
def token_ledger(table, ddb_client, clock) -> TokenLedger:
    return TokenLedger(table, lambda: ddb_client, clock=clock)


# -- the ledger -------------------------------------------------------------------------------


def test_a_revoked_call_is_seen_and_others_are_not(token_ledger):
    token_ledger.revoke("call-1")
    assert token_ledger.is_revoked("call-1")
    assert not token_ledger.is_revoked("call-2")


def test_marker_keys_can_never_be_session_ids():
    for key in (ledger.revoked_key("call-1"), ledger.used_key("call-1", "ab" * 8)):
        with pytest.raises(ValueError):
            check_session_id(key)


def test_a_token_use_is_recorded_once_with_its_expiry_as_ttl(token_ledger, raw_item):
    assert token_ledger.record_use("call-1", "ab" * 8, 2_000_000_000) is True
    assert token_ledger.record_use("call-1", "ab" * 8, 2_000_000_000) is False
    assert token_ledger.record_use("call-1", "cd" * 8, 2_000_000_000) is True
    assert token_ledger.record_use("call-2", "ab" * 8, 2_000_000_000) is True
    item = raw_item(ledger.used_key("call-1", "ab" * 8))
    assert int(item["expires_at"]["N"]) == 2_000_000_000 + CLOCK_SKEW_SECS


def test_markers_leave_the_sessions_metadata_alone(manager, token_ledger):
    manager.set_session_metadata("call-1", {"step": 1})
    token_ledger.revoke("call-1")
    token_ledger.record_use("call-1", "ab" * 8, 2_000_000_000)
    assert manager.get_session_metadata("call-1") == {"step": 1}


# -- revocation through the manager -------------------------------------------------------------


def test_ending_a_session_revokes_its_tokens_on_every_instance(make_manager):
    first, second = make_manager(token_revocation=True), make_manager(token_revocation=True)
    mine = first.generate_token(FUNCTION, "call-1")
    other = first.generate_token(FUNCTION, "call-2")
    first.set_session_metadata("call-1", {"step": 1})
    assert second.check_token("call-1", FUNCTION, mine) is None

    assert first.end_session("call-1") is True

    assert second.check_token("call-1", FUNCTION, mine) == tokens.Refusal.REVOKED
    assert first.check_token("call-1", FUNCTION, mine) == tokens.Refusal.REVOKED
    assert second.check_token("call-2", FUNCTION, other) is None
    assert second.get_session_metadata("call-1") == {}


def test_without_revocation_ending_a_session_deletes_only_its_metadata(make_manager):
    manager = make_manager()
    token = manager.generate_token(FUNCTION, "call-1")
    manager.set_session_metadata("call-1", {"step": 1})
    manager.end_session("call-1")
    assert manager.get_session_metadata("call-1") == {}
    assert manager.check_token("call-1", FUNCTION, token) is None


def test_a_revoked_token_is_refused_as_expired_once_it_expires(make_manager, clock):
    manager = make_manager(token_revocation=True)
    token = manager.generate_token(FUNCTION, "call-1")
    manager.end_session("call-1")
    clock.advance(manager.token_expiry_secs + 1)
    assert manager.check_token("call-1", FUNCTION, token) == tokens.Refusal.EXPIRED


# -- single use through the manager -------------------------------------------------------------


def test_a_single_use_token_validates_once_across_instances(make_manager):
    first, second = make_manager(single_use_tokens=True), make_manager(single_use_tokens=True)
    token = first.generate_token(FUNCTION, "call-1")
    assert second.check_token("call-1", FUNCTION, token) is None
    assert first.check_token("call-1", FUNCTION, token) == tokens.Refusal.REPLAYED
    assert second.validate_token("call-1", FUNCTION, token) is False
    # Another token of the same call and function is a token of its own.
    assert first.check_token("call-1", FUNCTION, first.generate_token(FUNCTION, "call-1")) is None


def test_a_forged_token_does_not_burn_the_real_ones_slot(make_manager, signing_key):
    manager = make_manager(single_use_tokens=True)
    real = manager.generate_token(FUNCTION, "call-1")
    parsed = tokens.parse(real)
    # Same call, function, expiry and nonce: only the signature differs.
    forged_signature = tokens.sign(b"not-the-key" * 4, parsed.message())
    raw = f"{parsed.call_id}.{FUNCTION}.{parsed.expiry}.{parsed.nonce}.{forged_signature}"
    forged = base64.urlsafe_b64encode(raw.encode()).decode()
    assert manager.check_token("call-1", FUNCTION, forged) == tokens.Refusal.BAD_SIGNATURE
    assert manager.check_token("call-1", FUNCTION, real) is None


def test_of_many_concurrent_validations_of_one_token_exactly_one_succeeds(make_manager):
    instances = [make_manager(single_use_tokens=True) for _ in range(12)]
    token = instances[0].generate_token(FUNCTION, "call-1")
    for instance in instances:  # warm: each has its key, so the race is on the ledger
        instance.keys.signing_key()
    answers: list[str | None] = []
    start = threading.Barrier(len(instances))

    def validate(instance: SessionManager) -> None:
        start.wait(timeout=10)
        answers.append(instance.check_token("call-1", FUNCTION, token))

    threads = [threading.Thread(target=validate, args=(i,)) for i in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers, key=str) == [None] + [tokens.Refusal.REPLAYED] * (len(instances) - 1)


def test_single_use_for_named_functions_only(make_manager):
    manager = make_manager(single_use_tokens="transfer_call, refund")
    refund = manager.generate_token("refund", "call-1")
    weather = manager.generate_token(FUNCTION, "call-1")
    assert manager.check_token("call-1", "refund", refund) is None
    assert manager.check_token("call-1", "refund", refund) == tokens.Refusal.REPLAYED
    assert manager.check_token("call-1", FUNCTION, weather) is None
    assert manager.check_token("call-1", FUNCTION, weather) is None


def test_with_both_modes_a_revoked_token_is_revoked_not_replayed(make_manager):
    manager = make_manager(token_revocation=True, single_use_tokens=True)
    used = manager.generate_token(FUNCTION, "call-1")
    unused = manager.generate_token(FUNCTION, "call-1")
    assert manager.check_token("call-1", FUNCTION, used) is None
    manager.end_session("call-1")
    assert manager.check_token("call-1", FUNCTION, used) == tokens.Refusal.REVOKED
    assert manager.check_token("call-1", FUNCTION, unused) == tokens.Refusal.REVOKED


# -- AWS calls per validation -------------------------------------------------------------------

MODES = {
    "off": ({}, {}),
    "revocation": ({"token_revocation": True}, {"GetItem": 1}),
    "single-use": ({"single_use_tokens": True}, {"PutItem": 1}),
    "both": ({"token_revocation": True, "single_use_tokens": True}, {"GetItem": 1, "PutItem": 1}),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_aws_calls_per_validation(make_manager, ddb_client, ddb_calls, sm_client, sm_calls, mode):
    settings, expected = MODES[mode]
    manager = make_manager(dynamodb_client=ddb_client, secrets_client=sm_client, **settings)
    manager.validate_token("call-1", FUNCTION, manager.generate_token(FUNCTION, "call-1"))
    token = manager.generate_token(FUNCTION, "call-1")
    ddb_calls.clear()
    sm_calls.clear()

    assert manager.check_token("call-1", FUNCTION, token) is None
    assert ddb_calls + sm_calls == expected

    # Refused on its claims or its signature: no AWS call at all, in any mode.
    ddb_calls.clear()
    assert manager.check_token("call-2", FUNCTION, token) == tokens.Refusal.WRONG_CALL
    forged = tokens.mint(b"x" * 32, "call-1", FUNCTION, tokens.parse(token).expiry)
    manager.check_token("call-1", FUNCTION, forged)  # may refetch the key; never the table
    assert ddb_calls == {}


# -- configuration ----------------------------------------------------------------------------


def test_from_env_reads_both_modes(monkeypatch, table, secret):
    monkeypatch.setenv("SESSIONS_TABLE", table)
    monkeypatch.setenv("SIGNING_SECRET_ID", secret)
    monkeypatch.setenv("TOKEN_REVOCATION", "true")
    monkeypatch.setenv("SINGLE_USE_TOKENS", "refund,transfer_call")
    manager = SessionManager.from_env()
    assert manager.token_revocation is True
    assert manager.single_use_tokens == {"refund", "transfer_call"}

    monkeypatch.setenv("TOKEN_REVOCATION", "")
    monkeypatch.setenv("SINGLE_USE_TOKENS", "TRUE")
    manager = SessionManager.from_env()
    assert (manager.token_revocation, manager.single_use_tokens) == (False, True)

    monkeypatch.delenv("TOKEN_REVOCATION")
    monkeypatch.delenv("SINGLE_USE_TOKENS")
    manager = SessionManager.from_env()
    assert (manager.token_revocation, manager.single_use_tokens) == (False, False)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOKEN_REVOCATION", "maybe"),
        ("SINGLE_USE_TOKENS", "get-weather"),
        ("SINGLE_USE_TOKENS", "a b"),
    ],
)
def test_from_env_refuses_a_value_it_cannot_read(monkeypatch, table, secret, name, value):
    monkeypatch.setenv("SESSIONS_TABLE", table)
    monkeypatch.setenv("SIGNING_SECRET_ID", secret)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        SessionManager.from_env()


def test_the_modes_need_a_table():
    for settings in ({"token_revocation": True}, {"single_use_tokens": True}):
        with pytest.raises(ConfigurationError, match="table"):
            SessionManager(secret_key="k" * 32, **settings)


def test_end_session_without_a_table_or_revocation_answers_true_as_the_sdk():
    assert SessionManager(secret_key="k" * 32).end_session("call-1") is True


def test_ending_a_session_writes_the_marker_then_deletes_with_the_managers_client(
    make_manager, ddb_client, ddb_calls
):
    manager = make_manager(dynamodb_client=ddb_client, token_revocation=True)
    manager.end_session("call-1")
    assert ddb_calls == {"PutItem": 1, "DeleteItem": 1}


# -- revocation covers every lifetime a token may have been minted with ----------------------


@pytest.mark.parametrize("lifetime", [900, 3600, 36000, tokens.MAX_LIFETIME_SECS])
def test_a_revoked_calls_token_stays_refused_until_it_expires_whatever_its_lifetime(
    make_manager, clock, lifetime
):
    # The agent mints with its own lifetime (install keeps the SDK's 3600 s), the API
    # validates and ends the call with another (900 s).
    minter = make_manager(token_expiry_secs=lifetime)
    api = make_manager(token_revocation=True, token_expiry_secs=900)
    token = minter.generate_token(FUNCTION, "call-1")
    api.end_session("call-1")
    for elapsed in (0, min(900 + CLOCK_SKEW_SECS + 50, lifetime), lifetime):  # end + 1250 s
        clock.now = tokens.parse(token).expiry - lifetime + elapsed
        assert api.check_token("call-1", FUNCTION, token) == tokens.Refusal.REVOKED
    clock.advance(1)
    assert api.check_token("call-1", FUNCTION, token) == tokens.Refusal.EXPIRED


def test_the_marker_records_the_end_and_lives_the_longest_lifetime_plus_skew(
    token_ledger, raw_item, clock
):
    token_ledger.revoke("call-1")
    item = raw_item(ledger.revoked_key("call-1"))
    assert int(item["ended_at"]["N"]) == int(clock())
    bound = tokens.MAX_LIFETIME_SECS + CLOCK_SKEW_SECS
    assert int(item["expires_at"]["N"]) == int(clock()) + bound
    clock.advance(bound - 1)
    assert token_ledger.is_revoked("call-1")
    clock.advance(1)
    assert not token_ledger.is_revoked("call-1")


def test_an_ended_call_stays_ended_for_tokens_minted_after_the_end(make_manager, clock):
    manager = make_manager(token_revocation=True)
    manager.end_session("call-1")
    clock.advance(3600)
    late = manager.generate_token(FUNCTION, "call-1")
    assert manager.check_token("call-1", FUNCTION, late) == tokens.Refusal.REVOKED


# -- single use: a retried write recognises itself ----------------------------------------------


class LoseAnswers:
    """The next `times` PutItems land (sent through a second client), then their answers
    are lost: botocore sees a read timeout, which the client's retries retry."""

    def __init__(self, client: Any, times: int = 1) -> None:
        self.times = times
        self.lost = 0
        self._courier = boto3.client("dynamodb")
        client.meta.events.register("before-send.dynamodb.PutItem", self._land_then_lose)

    def _land_then_lose(self, request: Any, **_: Any) -> None:
        if self.lost >= self.times:
            return
        self.lost += 1
        self._courier.put_item(**json.loads(request.body))
        raise ReadTimeoutError(endpoint_url=request.url)


def test_a_single_use_token_whose_first_answer_was_lost_still_validates_once(make_manager):
    client = aws.client("dynamodb")
    lose = LoseAnswers(client)
    manager = make_manager(single_use_tokens=True, dynamodb_client=client)
    token = manager.generate_token(FUNCTION, "call-1")
    assert manager.check_token("call-1", FUNCTION, token) is None
    assert lose.lost == 1
    assert manager.check_token("call-1", FUNCTION, token) == tokens.Refusal.REPLAYED


def test_record_use_after_a_lost_answer_is_true_once_and_replays_are_false(table, clock):
    client = aws.client("dynamodb")
    LoseAnswers(client, times=1)
    token_ledger = TokenLedger(table, lambda: client, clock=clock)
    assert token_ledger.record_use("call-1", "ab" * 8, 2_000_000_000) is True
    assert token_ledger.record_use("call-1", "ab" * 8, 2_000_000_000) is False
