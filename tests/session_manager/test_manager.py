"""The facade: configuration from the environment, the SDK's method names and argument
orders, typed errors, and boto3 clients made once per instance."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

import session_manager
from session_manager import (
    ConfigurationError,
    InvalidInputError,
    SessionManager,
    SessionManagerError,
    TooLargeError,
    UnavailableError,
    aws,
)
from session_manager.codec import MAX_ITEM_BYTES

FUNCTION = "lookup_order"
SETTINGS = ("TOKEN_EXPIRY_SECS", "SESSION_TTL_SECS", "SECRET_CACHE_SECS")


@pytest.fixture
def created_clients(monkeypatch) -> Counter[str]:
    """Count the boto3 clients the layer creates, by service; they still work (moto)."""
    created: Counter[str] = Counter()
    real = aws.client

    def counting(service: str) -> Any:
        created[service] += 1
        return real(service)

    monkeypatch.setattr(aws, "client", counting)
    return created


# -- from_env -------------------------------------------------------------------------------


def test_from_env_reads_the_template_environment(env, clock, raw_item, signing_key):
    manager = SessionManager.from_env(clock=clock)

    assert manager.token_expiry_secs == int(env["TOKEN_EXPIRY_SECS"])
    manager.set_session_metadata("s1", {"a": 1})
    assert manager.get_session_metadata("s1") == {"a": 1}
    expected = int(clock()) + int(env["SESSION_TTL_SECS"])
    assert raw_item("s1")["expires_at"] == {"N": str(expected)}
    # Signed with the key in the secret the environment names.
    other = SessionManager(secret_key=signing_key, clock=clock)
    assert other.validate_token("c1", FUNCTION, manager.generate_token(FUNCTION, "c1"))


def test_from_env_settings_are_used(env, monkeypatch, clock, raw_item):
    monkeypatch.setenv("TOKEN_EXPIRY_SECS", "60")
    monkeypatch.setenv("SESSION_TTL_SECS", "120")
    monkeypatch.setenv("SECRET_CACHE_SECS", "42")
    manager = SessionManager.from_env(clock=clock)

    assert manager.issue_token(FUNCTION, "c1")[1] == int(clock()) + 60
    manager.set_session_metadata("s1", {"a": 1})
    assert raw_item("s1")["expires_at"] == {"N": str(int(clock()) + 120)}
    # The cache period is only observable by waiting it out; read it instead.
    assert manager.keys._cache_secs == 42


def test_from_env_empty_settings_mean_the_defaults(env, monkeypatch, clock, raw_item):
    for name in SETTINGS:
        monkeypatch.setenv(name, "")
    manager = SessionManager.from_env(clock=clock)

    assert manager.issue_token(FUNCTION, "c1")[1] == int(clock()) + 900
    manager.set_session_metadata("s1", {"a": 1})
    assert raw_item("s1")["expires_at"] == {"N": str(int(clock()) + 3600)}
    assert manager.keys._cache_secs == 300


@pytest.mark.parametrize("value", ["abc", "1.5", "0", "-1", "1e3", "ten"])
@pytest.mark.parametrize("name", SETTINGS)
def test_from_env_bad_setting_is_a_configuration_error(env, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        SessionManager.from_env()


@pytest.mark.parametrize("name", ["SESSIONS_TABLE", "SIGNING_SECRET_ID"])
def test_from_env_missing_required_setting_is_a_configuration_error(env, monkeypatch, name):
    monkeypatch.delenv(name)
    with pytest.raises(ConfigurationError, match=name):
        SessionManager.from_env()


def test_from_env_needs_no_secret_id_when_a_key_is_given(env, monkeypatch):
    monkeypatch.delenv("SIGNING_SECRET_ID")
    manager = SessionManager.from_env(secret_key="k" * 32)
    assert manager.validate_token("c1", FUNCTION, manager.generate_token(FUNCTION, "c1"))


def test_from_env_keyword_arguments_win(env):
    assert SessionManager.from_env(token_expiry_secs=5).token_expiry_secs == 5


def test_from_env_creates_no_client_and_calls_nothing(env, created_clients):
    SessionManager.from_env()
    assert created_clients == {}


def test_clients_honour_botocores_endpoint_variables(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert aws.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:8000"
    assert aws.client("secretsmanager").meta.endpoint_url == "http://127.0.0.1:4566"


def test_clients_use_standard_retries_and_short_timeouts():
    config = aws.client("dynamodb").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}  # aws.py retries
    assert config.connect_timeout <= 5
    assert config.read_timeout <= 10


# -- the two token modes: booleans spelled as people spell them, nothing ambiguous ------------

TRUE_SPELLINGS = ["true", "TRUE", "Yes", "yes", "on", "1", "enabled", " True "]
FALSE_SPELLINGS = ["", "false", "No", "off", "0", "disabled", " FALSE "]
MODES = ("SINGLE_USE_TOKENS", "TOKEN_REVOCATION")


@pytest.mark.parametrize(
    ("value", "on"),
    [(value, True) for value in TRUE_SPELLINGS] + [(value, False) for value in FALSE_SPELLINGS],
)
@pytest.mark.parametrize("name", MODES)
def test_a_mode_reads_every_spelling_of_true_and_false(env, monkeypatch, name, value, on):
    monkeypatch.setenv(name, value)
    manager = SessionManager.from_env()
    mode = manager.single_use_tokens if name == "SINGLE_USE_TOKENS" else manager.token_revocation
    assert mode is on


def test_single_use_tokens_yes_makes_every_token_single_use(env, monkeypatch):
    """`yes` once meant "a function named yes": every other function's tokens replayed."""
    monkeypatch.setenv("SINGLE_USE_TOKENS", "yes")
    manager = SessionManager.from_env()
    token = manager.generate_token(FUNCTION, "c1")
    assert manager.check_token("c1", FUNCTION, token) is None
    assert manager.check_token("c1", FUNCTION, token) == "replayed"


def test_single_use_tokens_names_functions(env, monkeypatch):
    monkeypatch.setenv("SINGLE_USE_TOKENS", " refund , transfer_call ")
    assert SessionManager.from_env().single_use_tokens == {"refund", "transfer_call"}


@pytest.mark.parametrize(
    "value",
    ["all", "ALL", "none", "*", "refund,yes", "on,refund", "refund,All", "refund,*", "a,none"],
)
def test_single_use_tokens_refuses_an_ambiguous_value_at_start(env, monkeypatch, value):
    monkeypatch.setenv("SINGLE_USE_TOKENS", value)
    with pytest.raises(ConfigurationError, match="SINGLE_USE_TOKENS"):
        SessionManager.from_env()
    monkeypatch.delenv("SINGLE_USE_TOKENS")
    with pytest.raises(ConfigurationError, match="single_use_tokens"):
        SessionManager(single_use_tokens=value)


@pytest.mark.parametrize("value", ["maybe", "all", "refund", "2", "y"])
def test_token_revocation_refuses_anything_but_a_boolean(env, monkeypatch, value):
    monkeypatch.setenv("TOKEN_REVOCATION", value)
    with pytest.raises(ConfigurationError, match="TOKEN_REVOCATION"):
        SessionManager.from_env()


# -- clients are made once ------------------------------------------------------------------


def test_each_client_is_created_once_and_reused(table, secret, created_clients):
    manager = SessionManager(table_name=table, secret_id=secret)
    for i in range(3):
        manager.set_session_metadata("s1", {f"k{i}": i})
        manager.get_session_metadata("s1")
        manager.validate_token("c1", FUNCTION, manager.generate_token(FUNCTION, "c1"))
    manager.delete_session_metadata("s1")
    assert created_clients == {"dynamodb": 1, "secretsmanager": 1}


def test_first_use_from_many_threads_still_creates_one_client(table, secret, created_clients):
    manager = SessionManager(table_name=table, secret_id=secret)
    barrier = threading.Barrier(8)

    def first_use(i: int) -> None:
        barrier.wait()
        manager.set_session_metadata("s1", {f"k{i}": i})

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert created_clients == {"dynamodb": 1}
    assert len(manager.get_session_metadata("s1")) == 8


def test_given_clients_are_used_and_none_created(manager, created_clients, ddb_calls, sm_calls):
    manager.get_session_metadata("s1")
    manager.generate_token(FUNCTION, "c1")
    assert created_clients == {}
    assert ddb_calls["GetItem"] == 1
    assert sm_calls["GetSecretValue"] == 1


# -- the SDK's interface --------------------------------------------------------------------


def test_sdk_style_set_session_metadata_returns_true(manager):
    assert manager.set_session_metadata("s1", "colour", "blue") is True
    assert manager.set_session_metadata("s1", "size", 3) is True
    assert manager.get_session_metadata("s1") == {"colour": "blue", "size": 3}
    # As in the dict form, None removes the key.
    assert manager.set_session_metadata("s1", "colour", None) is True
    assert manager.get_session_metadata("s1") == {"size": 3}


def test_dict_style_set_session_metadata_returns_the_merged_metadata(manager):
    assert manager.set_session_metadata("s1", {"a": 1}) == {"a": 1}
    assert manager.set_session_metadata("s1", {"b": 2.5}) == {"a": 1, "b": 2.5}


def test_set_session_metadata_with_a_value_needs_a_string_key(manager, ddb_calls):
    with pytest.raises(InvalidInputError):
        manager.set_session_metadata("s1", {"a": 1}, "value")
    with pytest.raises(InvalidInputError):
        manager.set_session_metadata("s1", 7, "value")
    assert ddb_calls == {}


def test_replace_delete_and_cleanup_through_the_facade(manager, clock):
    manager.set_session_metadata("s1", {"a": 1, "b": 2})
    assert manager.replace_session_metadata("s1", {"c": 3}) == {"c": 3}
    assert manager.get_session_metadata("s1") == {"c": 3}
    assert manager.delete_session_metadata("s1") is True
    assert manager.delete_session_metadata("s1") is False

    manager.set_session_metadata("s2", {"a": 1})
    clock.advance(3600)
    assert manager.cleanup() == 1


def test_the_managers_clock_and_ttl_decide_expiry(make_manager, clock):
    manager = make_manager(session_ttl_secs=60)
    manager.set_session_metadata("s1", {"old": 1})
    clock.advance(59)
    assert manager.get_session_metadata("s1") == {"old": 1}
    clock.advance(1)
    # Expired but still in the table: absent for get, merge and delete alike.
    assert manager.get_session_metadata("s1") == {}
    assert manager.set_session_metadata("s1", {"new": 2}) == {"new": 2}
    clock.advance(60)
    assert manager.delete_session_metadata("s1") is False


def test_aliases_take_the_sdks_argument_orders(manager):
    token = manager.create_tool_token(FUNCTION, "c1")  # (function_name, call_id)
    assert manager.validate_token("c1", FUNCTION, token)  # (call_id, function_name, token)
    assert manager.validate_tool_token(FUNCTION, token, "c1")  # (function_name, token, call_id)
    assert not manager.validate_token(FUNCTION, "c1", token)
    assert not manager.validate_tool_token("c1", token, FUNCTION)


def test_create_session_makes_a_valid_unique_id_without_aws(manager, sm_calls):
    ids = {manager.create_session() for _ in range(100)}
    assert len(ids) == 100
    for session_id in ids:
        assert manager.set_session_metadata(session_id, "k", 1) is True
    assert sm_calls == {}


def test_create_session_keeps_a_given_call_id(manager):
    assert manager.create_session("root.2") == "root.2"
    with pytest.raises(InvalidInputError):
        manager.create_session("not valid")


def test_activate_and_end_session_answer_true_as_in_the_sdk(manager):
    manager.set_session_metadata("s1", {"a": 1})
    assert manager.activate_session("s1") is True
    assert manager.end_session("s1") is True
    # Unlike the SDK's, ending a session deletes its metadata (the contract's end_session).
    assert manager.get_session_metadata("s1") == {}


def test_tokens_need_no_table_and_metadata_needs_one():
    manager = SessionManager(secret_key="k" * 32)
    assert manager.validate_token("c1", FUNCTION, manager.generate_token(FUNCTION, "c1"))
    with pytest.raises(ConfigurationError):
        manager.get_session_metadata("s1")


@pytest.mark.parametrize("ttl", [0, -60])
def test_a_session_ttl_that_is_not_positive_is_refused_at_start(make_manager, ttl):
    """As SESSION_TTL_SECS is: metadata that expires as it is written would be lost at
    once, every write answering {} and every read finding nothing."""
    with pytest.raises(ConfigurationError, match="session_ttl_secs"):
        make_manager(session_ttl_secs=ttl)


# -- typed errors through the facade --------------------------------------------------------


def test_errors_are_typed_for_the_http_layer():
    for error in (InvalidInputError, TooLargeError, UnavailableError, ConfigurationError):
        assert issubclass(error, SessionManagerError)
        assert error.__name__ in session_manager.__all__
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(TooLargeError, ValueError)
    assert UnavailableError.retry_after_secs > 0


def test_too_large_through_the_facade(manager, ddb_calls):
    with pytest.raises(TooLargeError):
        manager.set_session_metadata("s1", {"blob": "x" * MAX_ITEM_BYTES})
    with pytest.raises(TooLargeError):
        manager.replace_session_metadata("s1", {"blob": "x" * MAX_ITEM_BYTES})
    assert ddb_calls == {}


@pytest.mark.parametrize("kind", ["throttled", "unreachable"])
def test_unavailable_through_the_facade(manager, ddb_client, outage, kind):
    outage(ddb_client, kind).active = True
    with pytest.raises(UnavailableError):
        manager.get_session_metadata("s1")
    with pytest.raises(UnavailableError):
        manager.set_session_metadata("s1", "k", "v")


# -- SessionManager() as the SDK's: configured from the environment -------------------------


def test_no_arguments_reads_the_environment(env, monkeypatch, raw_item, signing_key):
    monkeypatch.setenv("TOKEN_EXPIRY_SECS", "60")
    monkeypatch.setenv("SESSION_TTL_SECS", "120")
    manager = SessionManager()

    assert manager.token_expiry_secs == 60
    token = manager.generate_token(FUNCTION, "c1")
    # Signed with the key in the secret SIGNING_SECRET_ID names.
    assert SessionManager(secret_key=signing_key).validate_token("c1", FUNCTION, token)
    manager.set_session_metadata("s1", {"a": 1})
    written = int(raw_item("s1")["updated_at"]["N"])
    assert raw_item("s1")["expires_at"] == {"N": str(written + 120)}


def test_the_sdks_positional_lifetime_still_wins_over_the_environment(env, monkeypatch):
    monkeypatch.setenv("TOKEN_EXPIRY_SECS", "60")
    assert SessionManager(600).token_expiry_secs == 600


def test_no_arguments_and_no_environment_is_a_clear_configuration_error(monkeypatch):
    for name in ("SIGNING_SECRET_ID", "SESSIONS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="SIGNING_SECRET_ID"):
        SessionManager()


def test_a_table_without_a_key_serves_metadata_and_names_the_missing_key(env, monkeypatch):
    monkeypatch.delenv("SIGNING_SECRET_ID")
    manager = SessionManager()
    manager.set_session_metadata("s1", {"a": 1})
    assert manager.get_session_metadata("s1") == {"a": 1}
    with pytest.raises(ConfigurationError, match="SIGNING_SECRET_ID"):
        manager.generate_token(FUNCTION, "c1")


def test_a_key_in_code_is_the_only_key_even_with_a_secret_in_the_environment(env, created_clients):
    manager = SessionManager(secret_key="k" * 32)
    token = manager.generate_token(FUNCTION, "c1")
    assert manager.validate_token("c1", FUNCTION, token)
    assert "secretsmanager" not in created_clients


# -- the attributes SDK code touches --------------------------------------------------------


def test_secret_key_is_the_key_given_in_code_and_none_from_secrets_manager(manager):
    assert SessionManager(secret_key="k" * 40).secret_key == "k" * 40
    # Never fetched for an attribute read, never held where vars() or a repr shows it.
    assert manager.secret_key is None


def test_setting_secret_key_makes_it_the_key_as_in_the_sdk(manager, sm_calls):
    manager.secret_key = "n" * 32
    token = manager.generate_token(FUNCTION, "c1")
    assert SessionManager(secret_key="n" * 32).validate_token("c1", FUNCTION, token)
    assert sm_calls == {}
    with pytest.raises(ConfigurationError):
        manager.secret_key = "short"


def test_token_expiry_secs_can_be_changed_after_construction(manager, clock):
    manager.token_expiry_secs = 30
    assert manager.issue_token(FUNCTION, "c1")[1] == int(clock()) + 30


# -- time is read at call time --------------------------------------------------------------


def test_patching_time_time_moves_our_clock(monkeypatch):
    manager = SessionManager(secret_key="k" * 32)
    token = manager.generate_token(FUNCTION, "c1")
    assert manager.validate_token("c1", FUNCTION, token)
    real = time.time()
    monkeypatch.setattr(time, "time", lambda: real + 901)
    assert manager.check_token("c1", FUNCTION, token) == "expired"


def test_patching_time_time_moves_the_stores_clock_too(table, monkeypatch):
    manager = SessionManager(secret_key="k" * 32, table_name=table, session_ttl_secs=60)
    manager.set_session_metadata("s1", {"a": 1})
    real = time.time()
    monkeypatch.setattr(time, "time", lambda: real + 61)
    assert manager.get_session_metadata("s1") == {}


# -- debug_token gating ---------------------------------------------------------------------


def test_debug_token_is_off_until_debug_mode_is_set(manager):
    token = manager.generate_token(FUNCTION, "call-0123456789")
    assert manager.debug_token(token) == {"error": "debug mode not enabled"}
    manager._debug_mode = True
    info = manager.debug_token(token)
    assert info["valid_format"] is True
    assert info["components"]["call_id"] == "call-012..."  # shortened, as in the SDK
    assert token not in str(info)


# -- cleanup --------------------------------------------------------------------------------


def test_cleanup_by_default_removes_sessions_older_than_the_token_lifetime(manager, clock):
    manager.set_session_metadata("old", {"a": 1})
    clock.advance(manager.token_expiry_secs - 1)
    manager.set_session_metadata("recent", {"a": 1})
    assert manager.cleanup() == 0
    clock.advance(1)  # "old" was last written exactly a token lifetime ago
    assert manager.cleanup() == 1
    assert manager.get_session_metadata("old") == {}
    assert manager.get_session_metadata("recent") == {"a": 1}


def test_cleanup_zero_removes_sessions_written_this_second(manager):
    manager.set_session_metadata("s1", {"a": 1})
    manager.set_session_metadata("s2", {"a": 1})
    assert manager.cleanup(0) == 2
    assert manager.get_session_metadata("s1") == {}


@pytest.mark.parametrize("age", [-1, 1.5, "60", True])
def test_cleanup_refuses_an_age_that_is_not_whole_seconds(manager, ddb_calls, age):
    with pytest.raises(InvalidInputError):
        manager.cleanup(age)
    assert ddb_calls == {}


def test_cleanup_leaves_live_marker_items_alone(manager, dynamodb, table, clock):
    """Items whose pk holds '#' (revocation and single-use markers) are not sessions: a
    live one survives cleanup(0); they carry only their key and expiry."""
    dynamodb.put_item(
        TableName=table,
        Item={"pk": {"S": "revoked#c1"}, "expires_at": {"N": str(int(clock()) + 600)}},
    )
    manager.set_session_metadata("s1", {"a": 1})
    assert manager.cleanup(0) == 1
    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "revoked#c1"}}).get("Item")
