"""SessionManager: the SignalWire SDK's interface, backed by DynamoDB and Secrets Manager."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from . import aws, tokens
from .errors import ConfigurationError, InvalidInputError
from .keys import SecretsManagerKeys, SigningKeys, StaticKey
from .ledger import TokenLedger
from .settings import Settings, parse_flag, parse_single_use
from .store import MetadataStore
from .validation import (
    MAX_FUNCTION_NAME_CHARS,
    SESSION_ID,
    check_function_name,
    check_session_id,
)

if TYPE_CHECKING:  # stubs only: nothing of mypy_boto3 is imported at run time
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    class _Clients(TypedDict):
        dynamodb: DynamoDBClient | None
        secretsmanager: SecretsManagerClient | None


_UNSET = object()
_session_id_shape = SESSION_ID.fullmatch
# The SDK's debug_token answer when debug mode is off (signalwire 3.7, signalwire_agents 1.1).
DEBUG_MODE_OFF = {"error": "debug mode not enabled"}
MALFORMED_MESSAGE = "the token is not in the SignalWire SDK's format"
# cleanup()'s bounds by default: a run fits well inside a Lambda invocation.
CLEANUP_MAX_PAGES = 10
CLEANUP_TIME_BUDGET_SECS = 10.0


class SessionManager:
    """Drop-in for `signalwire.core.security.session_manager.SessionManager`.

    Every instance that shares the table and the secret mints and accepts the same tokens
    and sees the same metadata, which is what Lambda's many short-lived instances need.
    AWS clients are created on first use, once per instance, and reused while warm.

    A setting not passed in code comes from the environment (see the README), then its
    default: `SessionManager()` is configured as the functions are. Where the SDK draws a
    random key, this raises ConfigurationError: a key no other instance holds is the bug
    this project exists to fix.
    """

    def __init__(
        self,
        token_expiry_secs: int | None = None,
        secret_key: str | None = None,
        *,
        table_name: str | None = None,
        secret_id: str | None = None,
        session_ttl_secs: int | None = None,
        secret_cache_secs: int | None = None,
        dynamodb_client: DynamoDBClient | None = None,
        secrets_client: SecretsManagerClient | None = None,
        clock: Callable[[], float] | None = None,
        token_revocation: bool | str | None = None,
        single_use_tokens: bool | str | Iterable[str] | None = None,
        settings: Settings | None = None,
    ) -> None:
        # `settings`: the environment's, read once (Settings.from_env() by default); an
        # argument given in code wins over it.
        env = Settings.from_env() if settings is None else settings
        if token_expiry_secs is None:
            token_expiry_secs = env.token_expiry_secs
        if session_ttl_secs is None:
            session_ttl_secs = env.session_ttl_secs
        if secret_cache_secs is None:
            secret_cache_secs = env.secret_cache_secs
        table_name = table_name or env.table_name
        if secret_key is None:
            secret_id = secret_id or env.secret_id
        if secret_key is None and not secret_id and not table_name:
            raise ConfigurationError(
                "SessionManager has no configuration: pass secret_key (32 characters or "
                "more) or set SIGNING_SECRET_ID, and set SESSIONS_TABLE for metadata"
            )
        self.token_expiry_secs = int(token_expiry_secs)
        if not 0 < self.token_expiry_secs <= tokens.MAX_LIFETIME_SECS:
            # Never mint a token we would refuse: dead on arrival, or past the expiry field.
            raise ConfigurationError(
                f"token_expiry_secs must be 1 to {tokens.MAX_LIFETIME_SECS}, "
                f"not {self.token_expiry_secs}"
            )
        # None: time.time, looked up at each call, so a test's patch("time.time") moves
        # our clock as it moves the SDK's.
        self._clock = clock
        # The SDK's switch for debug_token; off, as in the SDK.
        self._debug_mode = False
        self._lock = threading.Lock()
        self._clients: _Clients = {"dynamodb": dynamodb_client, "secretsmanager": secrets_client}
        self._table_name = table_name
        self._session_ttl_secs = int(session_ttl_secs)
        if self._session_ttl_secs <= 0:
            # As SESSION_TTL_SECS: metadata written already expired would be lost at once.
            raise ConfigurationError(
                f"session_ttl_secs must be positive, not {self._session_ttl_secs}"
            )
        self._keys: SigningKeys | None
        if secret_key is not None:
            self._keys = StaticKey(secret_key)
        elif secret_id:
            self._keys = SecretsManagerKeys(
                secret_id, self._secrets_client, cache_secs=secret_cache_secs
            )
        else:
            self._keys = None
        self._store: MetadataStore | None = None
        self.token_revocation = (
            env.token_revocation
            if token_revocation is None
            else parse_flag("token_revocation", token_revocation)
        )
        self.single_use_tokens = (
            env.single_use_tokens
            if single_use_tokens is None
            else parse_single_use(single_use_tokens, "single_use_tokens")
        )
        self._ledger: TokenLedger | None = None
        if (self.token_revocation or self.single_use_tokens) and not table_name:
            raise ConfigurationError("token revocation and single-use tokens need a table")

    @property
    def secret_key(self) -> str | None:
        """The key given in code, as the SDK exposes it; None when the key lives in
        Secrets Manager: reading an attribute must not fetch key material, and a key an
        instance holds only in its cache should not show in a repr, a debugger or vars()."""
        if isinstance(self._keys, StaticKey):
            return self._keys.signing_key().decode("utf-8")  # the string it was given
        return None

    @secret_key.setter
    def secret_key(self, value: str) -> None:
        # As in the SDK, setting it makes that the key (refused under 32 characters).
        self._keys = StaticKey(value)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    @classmethod
    def from_env(cls, **overrides: Any) -> SessionManager:
        """Configured from the environment (see the README); keyword arguments win.

        What a deployed function needs: unlike `SessionManager()`, it refuses to start
        without both a table and a key, rather than failing on the first request."""
        settings = Settings.from_env()
        if not (overrides.get("table_name") or settings.table_name):
            raise ConfigurationError("SESSIONS_TABLE is not set")
        has_secret = overrides.get("secret_id") or settings.secret_id
        if overrides.get("secret_key") is None and not has_secret:
            raise ConfigurationError("SIGNING_SECRET_ID is not set")
        return cls(**{"settings": settings, **overrides})

    # -- wiring -------------------------------------------------------------------------

    def _dynamodb_client(self) -> DynamoDBClient:
        with self._lock:
            client = self._clients["dynamodb"]
            if client is None:
                client = self._clients["dynamodb"] = aws.client("dynamodb")
            return client

    def _secrets_client(self) -> SecretsManagerClient:
        with self._lock:
            client = self._clients["secretsmanager"]
            if client is None:
                client = self._clients["secretsmanager"] = aws.client("secretsmanager")
            return client

    @property
    def store(self) -> MetadataStore:
        if self._store is None:
            if not self._table_name:
                raise ConfigurationError("no table: pass table_name or set SESSIONS_TABLE")
            self._store = MetadataStore(
                self._table_name,
                self._dynamodb_client,
                ttl_secs=self._session_ttl_secs,
                clock=self._now,
            )
        return self._store

    @property
    def ledger(self) -> TokenLedger:
        if self._ledger is None:
            self._ledger = TokenLedger(
                self._table_name or "", self._dynamodb_client, clock=self._now
            )
        return self._ledger

    @property
    def keys(self) -> SigningKeys:
        if self._keys is None:
            raise ConfigurationError("no signing key: pass secret_key or set SIGNING_SECRET_ID")
        return self._keys

    # -- sessions -----------------------------------------------------------------------

    def create_session(self, call_id: str | None = None) -> str:
        return check_session_id(call_id) if call_id else secrets.token_urlsafe(16)

    def activate_session(self, call_id: str) -> bool:
        return True

    def end_session(self, call_id: str) -> bool:
        """The call is over: its metadata is deleted and, with token revocation, its
        tokens are refused from now on, on every instance. Revoked first: should the
        delete fail, a retry finds the tokens already refused."""
        check_session_id(call_id)
        if self.token_revocation:
            self.ledger.revoke(call_id)
        if self._table_name:
            self.store.delete(call_id)
        return True

    # -- tokens -------------------------------------------------------------------------

    def issue_token(self, function_name: str, call_id: str) -> tuple[str, int]:
        """A token for one function in one call, and its expiry in epoch seconds."""
        # The two checks' happy paths inline (the check functions raise their errors),
        # and self._now() and self.keys too: minting is a few microseconds, each Python
        # call 2-3% of it.
        if not (
            isinstance(function_name, str)
            and len(function_name) <= MAX_FUNCTION_NAME_CHARS
            and function_name.isascii()
            and function_name.isidentifier()
            and isinstance(call_id, str)
            and _session_id_shape(call_id) is not None
        ):
            check_function_name(function_name)
            check_session_id(call_id)
        now = time.time() if self._clock is None else self._clock()
        expiry = int(now) + self.token_expiry_secs
        keys = self._keys or self.keys  # the property raises the missing key's error
        return tokens.mint(keys.signing_key(), call_id, function_name, expiry), expiry

    def generate_token(self, function_name: str, call_id: str) -> str:
        return self.issue_token(function_name, call_id)[0]

    create_tool_token = generate_token

    def check_token(self, call_id: str, function_name: str, token: str) -> tokens.Refusal | None:
        """Why the token is refused for this call and function, or None when it is valid."""
        parsed = tokens.parse(token)
        # Claims first: they cost no key, so an expired or misdirected token never makes
        # us fetch a key. (self._now() inlined, as in issue_token.)
        reason = tokens.check_claims(
            parsed, call_id, function_name, time.time() if self._clock is None else self._clock()
        )
        if reason:
            return reason
        assert parsed is not None  # check_claims refused a None as MALFORMED
        keys = self._keys or self.keys
        tried = keys.verification_keys()
        if not tokens.signed_by(parsed, tried):
            # Look again. A rate-limited refresh finds nothing new when another thread's
            # refresh has just found it, so try the keys held now whenever they differ.
            keys.refresh()
            held = keys.verification_keys()
            if held == tried or not tokens.signed_by(parsed, held):
                return tokens.Refusal.BAD_SIGNATURE
        # Only a genuine token reaches the ledger: a forgery costs no read and burns no slot.
        if self.token_revocation and self.ledger.is_revoked(parsed.call_id):
            return tokens.Refusal.REVOKED
        single_use = self.single_use_tokens  # True: every function; else the names it covers
        if (single_use is True or (single_use and function_name in single_use)) and not (
            self.ledger.record_use(parsed.call_id, parsed.nonce, parsed.expiry)
        ):
            return tokens.Refusal.REPLAYED
        return None

    def validate_token(self, call_id: str, function_name: str, token: str) -> bool:
        return self.check_token(call_id, function_name, token) is None

    def validate_tool_token(self, function_name: str, token: str, call_id: str) -> bool:
        return self.check_token(call_id, function_name, token) is None

    def debug_token(self, token: str) -> dict[str, Any]:
        """The token's fields, unverified, shaped and gated as the SDK's answer.

        `{"error": "debug mode not enabled"}` unless `_debug_mode` is set; a malformed
        token answers `{"valid_format": False, "error", "token_length"}`. As in the SDK,
        a call id over 8 characters and the signature are cut to 8 characters and "...":
        the SDK's StateMixin validates against the call id it reads here when a request
        names none, and a shortened one never matches.
        """
        if not self._debug_mode:
            return dict(DEBUG_MODE_OFF)
        parsed = tokens.parse(token)
        if parsed is None:
            length = len(token) if isinstance(token, str) else 0
            return {"valid_format": False, "error": MALFORMED_MESSAGE, "token_length": length}
        now = int(self._now())
        call_id = parsed.call_id
        return {
            "valid_format": True,
            "components": {
                "call_id": call_id[:8] + "..." if len(call_id) > 8 else call_id,
                "function": parsed.function_name,
                "expiry": str(parsed.expiry),
                # The SDK's rendering: the process's local time, UTC on Lambda.
                "expiry_date": datetime.fromtimestamp(parsed.expiry).isoformat(),
                "nonce": parsed.nonce,
                "signature": parsed.signature[:8] + "...",
            },
            "status": {
                "current_time": now,
                "is_expired": parsed.expiry < now,
                "expires_in_seconds": max(parsed.expiry - now, 0),
            },
        }

    # -- metadata -----------------------------------------------------------------------

    # The SDK names the session `call_id` and the pair `key`, `value`; ours were
    # `session_id` and `metadata`. Both spellings are accepted, so code written for either
    # keeps working (tests/integrations/test_sdk_parity.py calls each SDK method by keyword).

    def get_session_metadata(
        self, call_id: str | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        """The session's metadata, {} when none."""
        return self.store.get(_one_session(call_id, session_id))

    def set_session_metadata(
        self,
        call_id: str | None = None,
        key: Mapping[str, Any] | str | None = None,
        value: Any = _UNSET,
        *,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        """Merge `metadata` (or the mapping given as `key`) into the session and return
        the result; a None value removes its key. The SDK's form `(call_id, key, value)`
        also works and returns True.

        A None value removes its key in both forms (the TypeScript SDK stores a null in the
        second): one rule for both forms and for the HTTP API's PATCH, and `.get(key)`
        reads None either way."""
        call_id = _one_session(call_id, session_id)
        if metadata is not None:
            if key is not None or value is not _UNSET:
                raise TypeError("pass metadata=, or key and value, not both")
            key = metadata
        if value is not _UNSET:
            if not isinstance(key, str):
                raise InvalidInputError("with a value, the second argument is the key")
            self.store.merge(call_id, {key: value})
            return True
        if key is None:
            raise TypeError("set_session_metadata() needs metadata, or a key and its value")
        if isinstance(key, str):  # a key without its value
            raise InvalidInputError("metadata must be a JSON object")
        return self.store.merge(call_id, key)

    def replace_session_metadata(
        self, session_id: str, metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.store.replace(session_id, metadata)

    def delete_session_metadata(self, session_id: str) -> bool:
        return self.store.delete(session_id)

    def cleanup(
        self,
        max_age_secs: int | None = None,
        *,
        max_pages: int | None = CLEANUP_MAX_PAGES,
        time_budget_secs: float | None = CLEANUP_TIME_BUDGET_SECS,
    ) -> int:
        """Remove expired sessions and those not written for `max_age_secs` (by default
        the token lifetime, as the TypeScript SDK does); how many were removed.

        Like the TypeScript SDK, a session last written exactly `max_age_secs` ago goes,
        so `cleanup(0)` removes every session, those written this second included.

        Not in the Python SDK, whose manager stores nothing. It Scans the table (IAM:
        `dynamodb:Scan` and `dynamodb:DeleteItem` on it), so it is bounded: at most
        `max_pages` Scan pages (each reads up to 1 MB: about 128 read units, consistent)
        and no new call after `time_budget_secs`; None lifts a bound. What is left waits
        for the next call. DynamoDB's TTL removes expired items anyway, at no cost:
        cleanup only makes them go sooner, or removes sessions idle for `max_age_secs`.
        """
        max_age = self.token_expiry_secs if max_age_secs is None else max_age_secs
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise InvalidInputError("max_age_secs must be a whole number of seconds, 0 or more")
        if max_pages is not None and (isinstance(max_pages, bool) or max_pages < 1):
            raise InvalidInputError("max_pages must be 1 or more, or None")
        if time_budget_secs is not None and not time_budget_secs > 0:
            raise InvalidInputError("time_budget_secs must be positive, or None")
        out_of_time = None
        if time_budget_secs is not None:
            stop_at = time.monotonic() + time_budget_secs

            def out_of_time() -> bool:
                return time.monotonic() >= stop_at

        # The store removes what was written before now - age (whole seconds): one
        # second less of age makes that "at or before now - max_age".
        return self.store.cleanup(max_age - 1, max_pages=max_pages, out_of_time=out_of_time)


def _one_session(call_id: str | None, session_id: str | None) -> str:
    """The session a metadata call names, as the SDK's `call_id` or our `session_id`."""
    if (call_id is None) == (session_id is None):
        raise TypeError("name the session once: call_id (the SDK's name) or session_id")
    return call_id if call_id is not None else session_id  # type: ignore[return-value]
