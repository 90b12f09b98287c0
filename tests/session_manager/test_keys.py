"""Signing keys from Secrets Manager: AWSCURRENT signs, AWSPREVIOUS still validates,
a per-instance cache that survives outages, and a rate-limited refetch on a miss.

Rotation is `put_secret_value`: Secrets Manager moves AWSCURRENT to the new version and
AWSPREVIOUS to the old one, and the version before that loses its label.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

import pytest

from session_manager import ConfigurationError, SessionManager, UnavailableError, tokens
from session_manager.keys import MIN_REFRESH_INTERVAL_SECS, SecretsManagerKeys

FUNCTION = "lookup_order"
KEY_2 = "second-key-after-one-rotation-0123456789"
KEY_3 = "third-key-after-two-rotations-0123456789"


def rotate(secretsmanager, secret: str, new_key: str) -> None:
    secretsmanager.put_secret_value(SecretId=secret, SecretString=new_key)


def signed_with(token: str, key: str) -> bool:
    """Whether `key` made the token's signature, checked independently of the layer."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    call_id, function, expiry, nonce, signature = raw.rsplit(".", 4)
    message = f"{call_id}:{function}:{expiry}:{nonce}".encode()
    return hmac.compare_digest(
        hmac.new(key.encode(), message, hashlib.sha256).hexdigest(), signature
    )


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mono() -> MonotonicClock:
    return MonotonicClock()


@pytest.fixture
def keys(secret, sm_client, mono) -> SecretsManagerKeys:
    return SecretsManagerKeys(secret, lambda: sm_client, cache_secs=300, clock=mono)


# -- signing and rotation, through the manager ----------------------------------------------


def test_tokens_are_signed_with_awscurrent(manager, signing_key):
    assert signed_with(manager.generate_token(FUNCTION, "c1"), signing_key)


def test_after_one_rotation_old_tokens_still_validate_and_new_ones_use_the_new_key(
    make_manager, secretsmanager, secret, signing_key
):
    old_token = make_manager().generate_token(FUNCTION, "c1")
    rotate(secretsmanager, secret, KEY_2)

    fresh = make_manager()
    new_token = fresh.generate_token(FUNCTION, "c1")
    assert signed_with(new_token, KEY_2)
    assert not signed_with(new_token, signing_key)
    assert fresh.validate_token("c1", FUNCTION, old_token)  # via AWSPREVIOUS
    assert make_manager().validate_token("c1", FUNCTION, new_token)


def test_after_two_rotations_the_oldest_key_is_refused(make_manager, secretsmanager, secret):
    oldest = make_manager().generate_token(FUNCTION, "c1")
    rotate(secretsmanager, secret, KEY_2)
    previous = make_manager().generate_token(FUNCTION, "c1")
    rotate(secretsmanager, secret, KEY_3)

    fresh = make_manager()
    assert fresh.check_token("c1", FUNCTION, oldest) == tokens.Refusal.BAD_SIGNATURE
    assert fresh.check_token("c1", FUNCTION, previous) is None
    assert fresh.check_token("c1", FUNCTION, fresh.generate_token(FUNCTION, "c1")) is None


def test_warm_instance_with_a_stale_cache_accepts_a_token_signed_after_a_rotation(
    make_manager, secretsmanager, secret, signing_key
):
    warm = make_manager()  # default 300 s cache: it will not expire during the test
    before = warm.generate_token(FUNCTION, "c1")  # caches the first key
    rotate(secretsmanager, secret, KEY_2)

    after = make_manager().generate_token(FUNCTION, "c1")  # a fresher instance
    assert signed_with(after, KEY_2)
    assert warm.check_token("c1", FUNCTION, after) is None
    # Having looked again, the warm instance signs with the new key and still accepts
    # tokens signed with the old one.
    assert signed_with(warm.generate_token(FUNCTION, "c1"), KEY_2)
    assert warm.check_token("c1", FUNCTION, before) is None


def test_a_validation_that_races_anothers_refresh_uses_the_keys_it_found(
    make_manager, secretsmanager, secret, monkeypatch
):
    """Two threads of one instance (an agent's web server) validate tokens signed after a
    rotation its cache has not seen. The second misses with the keys it held, while the
    first refreshes them; the second's own refresh is then rate-limited, and must still try
    the keys the first one found rather than refuse a genuine token."""
    warm = make_manager()
    warm.generate_token(FUNCTION, "c1")  # caches the first key
    rotate(secretsmanager, secret, KEY_2)
    fresher = make_manager()
    first, second = (fresher.generate_token(FUNCTION, call) for call in ("c1", "c2"))

    real_signed_by = tokens.signed_by
    raced = []

    def signed_by(parsed, keys):
        keys = list(keys)  # the keys this validation read, before the other thread ran
        if parsed.call_id == "c2" and not raced:
            raced.append(True)
            assert warm.check_token("c1", FUNCTION, first) is None  # refreshes the keys
        return real_signed_by(parsed, keys)

    monkeypatch.setattr(tokens, "signed_by", signed_by)
    assert warm.check_token("c2", FUNCTION, second) is None
    assert raced


def test_a_flood_of_forged_tokens_costs_a_bounded_number_of_secret_fetches(manager, sm_calls):
    forger = SessionManager(secret_key="f" * 40)
    forged = [forger.generate_token(FUNCTION, "c1") for _ in range(100)]

    assert all(
        manager.check_token("c1", FUNCTION, t) == tokens.Refusal.BAD_SIGNATURE for t in forged
    )
    # AWSCURRENT once to validate, then one refresh (AWSCURRENT + AWSPREVIOUS); the other
    # 99 misses fall inside the 10 s refresh interval (real time here: they take
    # milliseconds) and fetch nothing. test_refresh_is_rate_limited pins the interval.
    assert sm_calls["GetSecretValue"] <= 3


def test_expired_or_misdirected_tokens_fetch_no_key(make_manager, sm_client, sm_calls, clock):
    manager = make_manager(secrets_client=sm_client)
    token = SessionManager(secret_key="f" * 40, clock=clock).generate_token(FUNCTION, "c1")
    assert manager.check_token("c2", FUNCTION, token) == tokens.Refusal.WRONG_CALL
    assert manager.check_token("c1", "other", token) == tokens.Refusal.WRONG_FUNCTION
    assert manager.check_token("c1", FUNCTION, "garbage") == tokens.Refusal.MALFORMED
    clock.advance(10_000)
    assert manager.check_token("c1", FUNCTION, token) == tokens.Refusal.EXPIRED
    assert sm_calls["GetSecretValue"] == 0


# -- outages --------------------------------------------------------------------------------


def test_unreachable_secrets_manager_with_a_cached_key_keeps_serving(
    make_manager, sm_client, outage, caplog, signing_key
):
    failing = outage(sm_client)
    # A cache of 0 s: every operation fetches again, so each one meets the outage.
    manager = make_manager(secrets_client=sm_client, secret_cache_secs=0)
    before = manager.generate_token(FUNCTION, "c1")

    failing.active = True
    with caplog.at_level(logging.WARNING, logger="session_manager.keys"):
        during = manager.generate_token(FUNCTION, "c1")
        assert manager.validate_token("c1", FUNCTION, before)
    assert failing.attempts == 2  # it did try, once per operation
    assert signed_with(during, signing_key)
    assert any("unreachable" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("kind", ["unreachable", "throttled"])
def test_secrets_manager_down_and_no_key_cached_raises_unavailable(
    make_manager, sm_client, outage, kind
):
    outage(sm_client, kind).active = True
    manager = make_manager(secrets_client=sm_client)
    token = SessionManager(secret_key="f" * 40).generate_token(FUNCTION, "c1")
    with pytest.raises(UnavailableError):
        manager.generate_token(FUNCTION, "c1")
    with pytest.raises(UnavailableError):
        manager.validate_token("c1", FUNCTION, token)


def test_forged_tokens_during_an_outage_do_not_hammer_secrets_manager(
    make_manager, sm_client, outage
):
    failing = outage(sm_client)
    manager = make_manager(secrets_client=sm_client)
    manager.generate_token(FUNCTION, "c1")  # AWSCURRENT cached; AWSPREVIOUS not yet read

    failing.active = True
    forger = SessionManager(secret_key="f" * 40)
    for _ in range(50):
        token = forger.generate_token(FUNCTION, "c1")
        assert manager.check_token("c1", FUNCTION, token) == tokens.Refusal.BAD_SIGNATURE
    # One refresh tried AWSCURRENT and failed, AWSPREVIOUS not chained onto it; the rest
    # wait their turn.
    assert failing.attempts == 1


# -- misconfigured secrets ------------------------------------------------------------------


def test_key_shorter_than_32_characters_in_code_is_refused():
    with pytest.raises(ConfigurationError, match="32"):
        SessionManager(secret_key="k" * 31)
    assert SessionManager(secret_key="k" * 32).generate_token(FUNCTION, "c1")


def test_key_shorter_than_32_characters_in_the_secret_is_refused(
    make_manager, secretsmanager, secret
):
    rotate(secretsmanager, secret, "k" * 31)
    with pytest.raises(ConfigurationError, match="32"):
        make_manager().generate_token(FUNCTION, "c1")
    rotate(secretsmanager, secret, "k" * 32)
    assert signed_with(make_manager().generate_token(FUNCTION, "c1"), "k" * 32)


def put_unusable(secretsmanager, secret: str, kind: str) -> None:
    """A version that holds no usable key: too short, or binary."""
    if kind == "too short":
        secretsmanager.put_secret_value(SecretId=secret, SecretString="too-short")
    else:
        secretsmanager.put_secret_value(SecretId=secret, SecretBinary=b"k" * 40)


@pytest.mark.parametrize("kind", ["too short", "binary"])
def test_an_unusable_awsprevious_is_logged_and_skipped(
    make_manager, secretsmanager, secret, signing_key, caplog, kind
):
    """A forged token makes the manager read AWSPREVIOUS: a bad one must not turn the
    refusal into an error (a 500 from POST /tokens/validate)."""
    put_unusable(secretsmanager, secret, kind)
    rotate(secretsmanager, secret, KEY_2)  # the unusable version is now AWSPREVIOUS
    manager = make_manager()
    forged = SessionManager(secret_key="f" * 40).generate_token(FUNCTION, "c1")

    with caplog.at_level(logging.WARNING, logger="session_manager.keys"):
        assert manager.check_token("c1", FUNCTION, forged) == tokens.Refusal.BAD_SIGNATURE
    assert manager.check_token("c1", FUNCTION, manager.generate_token(FUNCTION, "c1")) is None
    assert any("AWSPREVIOUS" in r.getMessage() for r in caplog.records)
    assert not any("too-short" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", ["too short", "binary"])
def test_an_unusable_new_awscurrent_leaves_a_warm_instance_on_its_cached_key(
    make_manager, secretsmanager, secret, signing_key, caplog, kind
):
    warm = make_manager()
    old_token = warm.generate_token(FUNCTION, "c1")  # caches the good key
    put_unusable(secretsmanager, secret, kind)
    forged = SessionManager(secret_key="f" * 40).generate_token(FUNCTION, "c1")

    with caplog.at_level(logging.WARNING, logger="session_manager.keys"):
        assert warm.check_token("c1", FUNCTION, forged) == tokens.Refusal.BAD_SIGNATURE
    assert warm.check_token("c1", FUNCTION, old_token) is None
    assert signed_with(warm.generate_token(FUNCTION, "c1"), signing_key)
    assert any("AWSCURRENT" in r.getMessage() for r in caplog.records)


def test_missing_secret_is_a_configuration_error(make_manager):
    with pytest.raises(ConfigurationError):
        make_manager(secret_id="no-such-secret").generate_token(FUNCTION, "c1")


def test_binary_secret_is_a_configuration_error(make_manager, secretsmanager):
    secretsmanager.create_secret(Name="binary-key", SecretBinary=b"k" * 40)
    with pytest.raises(ConfigurationError):
        make_manager(secret_id="binary-key").generate_token(FUNCTION, "c1")


def test_no_key_at_all_is_a_configuration_error(table):
    manager = SessionManager(table_name=table)
    with pytest.raises(ConfigurationError):
        manager.generate_token(FUNCTION, "c1")


# -- a key in code --------------------------------------------------------------------------


def test_key_in_code_is_the_only_key_and_makes_no_aws_call(
    make_manager, sm_client, outage, signing_key
):
    # Every Secrets Manager call would fail; the secret_id is there to be ignored.
    failing = outage(sm_client)
    failing.active = True
    manager = make_manager(secret_key=KEY_2, secrets_client=sm_client)

    token = manager.generate_token(FUNCTION, "c1")
    assert signed_with(token, KEY_2)
    assert manager.validate_token("c1", FUNCTION, token)
    from_secret = SessionManager(secret_key=signing_key).generate_token(FUNCTION, "c1")
    assert manager.check_token("c1", FUNCTION, from_secret) == tokens.Refusal.BAD_SIGNATURE
    assert failing.attempts == 0


# -- SecretsManagerKeys on its own clock ----------------------------------------------------


def test_keys_are_cached_for_cache_secs(keys, sm_calls, mono, signing_key):
    assert keys.signing_key() == signing_key.encode()
    mono.now += 299
    keys.signing_key()
    keys.verification_keys()
    assert sm_calls["GetSecretValue"] == 1
    mono.now += 1
    keys.signing_key()
    assert sm_calls["GetSecretValue"] == 2


def test_rotation_is_seen_when_the_cache_expires(keys, secretsmanager, secret, mono, signing_key):
    keys.signing_key()
    rotate(secretsmanager, secret, KEY_2)
    assert keys.signing_key() == signing_key.encode()  # cached
    mono.now += 300
    assert keys.signing_key() == KEY_2.encode()
    # The old key is not trusted until AWSPREVIOUS itself says so.
    assert keys.verification_keys() == [KEY_2.encode()]
    assert keys.refresh() is True
    assert keys.verification_keys() == [KEY_2.encode(), signing_key.encode()]


def test_refresh_before_any_rotation_finds_nothing_new(keys, sm_calls):
    keys.signing_key()
    assert keys.refresh() is False
    assert keys.verification_keys() == [keys.signing_key()]
    assert sm_calls["GetSecretValue"] == 3  # AWSCURRENT, then AWSCURRENT + AWSPREVIOUS


def test_refresh_is_rate_limited(keys, sm_calls, mono):
    keys.signing_key()
    keys.refresh()
    fetched = sm_calls["GetSecretValue"]

    for _ in range(100):
        assert keys.refresh() is False
    mono.now += MIN_REFRESH_INTERVAL_SECS - 1
    assert keys.refresh() is False
    assert sm_calls["GetSecretValue"] == fetched

    mono.now += 1
    keys.refresh()
    # AWSPREVIOUS is already known for this AWSCURRENT: only AWSCURRENT is asked again.
    assert sm_calls["GetSecretValue"] == fetched + 1


def test_refresh_right_after_a_rotation_is_not_rate_limited(
    keys, secretsmanager, secret, mono, signing_key
):
    keys.signing_key()
    keys.refresh()  # starts the refresh interval
    rotate(secretsmanager, secret, KEY_2)
    mono.now += 300  # the cache expires and sees the new AWSCURRENT ...
    keys.signing_key()
    # ... so the next miss (a token signed with the now-previous key) looks at once.
    assert keys.refresh() is True
    assert signing_key.encode() in keys.verification_keys()


def test_outage_with_a_cached_key_serves_it_and_logs(keys, sm_client, outage, mono, caplog):
    first = keys.signing_key()
    failing = outage(sm_client, "throttled")
    failing.active = True
    mono.now += 300
    with caplog.at_level(logging.WARNING, logger="session_manager.keys"):
        assert keys.signing_key() == first
    assert failing.attempts == 1
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    # The cached key counts as fresh again: no call per operation while AWS is down.
    keys.signing_key()
    assert failing.attempts == 1


def test_outage_does_not_defeat_the_refresh_rate_limit(keys, sm_client, outage, mono, calls_of):
    keys.signing_key()
    failing = outage(sm_client)
    failing.active = True
    for _ in range(20):
        assert keys.refresh() is False
    # One refresh: AWSCURRENT failed, so AWSPREVIOUS was not even asked (no chained wait).
    assert failing.attempts == 1

    # When AWS is back and the interval has passed, it asks again, AWSPREVIOUS included
    # since it never managed to read it; then it is quiet for another interval.
    failing.active = False
    calls = calls_of(sm_client)
    mono.now += MIN_REFRESH_INTERVAL_SECS
    keys.refresh()
    assert calls["GetSecretValue"] == 2
    keys.refresh()
    assert calls["GetSecretValue"] == 2
