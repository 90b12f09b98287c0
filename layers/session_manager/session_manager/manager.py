"""SessionManager: the SignalWire SDK's interface, backed by DynamoDB and Secrets Manager."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from . import aws, tokens
from .errors import ConfigurationError, InvalidInputError
from .keys import SecretsManagerKeys, SigningKeys, StaticKey
from .store import MetadataStore
from .validation import check_function_name, check_session_id

_UNSET = object()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, not {value}")
    return value


class SessionManager:
    """Drop-in for `signalwire.core.security.session_manager.SessionManager`.

    Every instance that shares the table and the secret mints and accepts the same tokens
    and sees the same metadata, which is what Lambda's many short-lived instances need.
    AWS clients are created on first use, once per instance, and reused while warm.
    """

    def __init__(
        self,
        token_expiry_secs: int = 900,
        secret_key: str | None = None,
        *,
        table_name: str | None = None,
        secret_id: str | None = None,
        session_ttl_secs: int = 3600,
        secret_cache_secs: int = 300,
        dynamodb_client: Any = None,
        secrets_client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_expiry_secs = int(token_expiry_secs)
        if not 0 < self.token_expiry_secs <= tokens.MAX_LIFETIME_SECS:
            # Never mint a token we would refuse: dead on arrival, or past the expiry field.
            raise ConfigurationError(
                f"token_expiry_secs must be 1 to {tokens.MAX_LIFETIME_SECS}, "
                f"not {self.token_expiry_secs}"
            )
        self._clock = clock
        self._lock = threading.Lock()
        self._clients = {"dynamodb": dynamodb_client, "secretsmanager": secrets_client}
        self._table_name = table_name
        self._session_ttl_secs = int(session_ttl_secs)
        self._keys: SigningKeys | None
        if secret_key is not None:
            self._keys = StaticKey(secret_key)
        elif secret_id:
            self._keys = SecretsManagerKeys(
                secret_id, lambda: self._client("secretsmanager"), cache_secs=secret_cache_secs
            )
        else:
            self._keys = None
        self._store: MetadataStore | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> SessionManager:
        """Configured from the environment (see the README); keyword arguments win."""
        settings: dict[str, Any] = {
            "token_expiry_secs": _env_int("TOKEN_EXPIRY_SECS", 900),
            "table_name": os.environ.get("SESSIONS_TABLE") or None,
            "secret_id": os.environ.get("SIGNING_SECRET_ID") or None,
            "session_ttl_secs": _env_int("SESSION_TTL_SECS", 3600),
            "secret_cache_secs": _env_int("SECRET_CACHE_SECS", 300),
        }
        settings.update(overrides)
        if not settings["table_name"]:
            raise ConfigurationError("SESSIONS_TABLE is not set")
        if not settings["secret_id"] and settings.get("secret_key") is None:
            raise ConfigurationError("SIGNING_SECRET_ID is not set")
        return cls(**settings)

    # -- wiring -------------------------------------------------------------------------

    def _client(self, service: str) -> Any:
        with self._lock:
            if self._clients[service] is None:
                self._clients[service] = aws.client(service)
            return self._clients[service]

    @property
    def store(self) -> MetadataStore:
        if self._store is None:
            if not self._table_name:
                raise ConfigurationError("no table: pass table_name or set SESSIONS_TABLE")
            self._store = MetadataStore(
                self._table_name,
                lambda: self._client("dynamodb"),
                ttl_secs=self._session_ttl_secs,
                clock=self._clock,
            )
        return self._store

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
        # As in the SDK: tokens are stateless, and metadata ends with its TTL.
        return True

    # -- tokens -------------------------------------------------------------------------

    def issue_token(self, function_name: str, call_id: str) -> tuple[str, int]:
        """A token for one function in one call, and its expiry in epoch seconds."""
        check_function_name(function_name)
        check_session_id(call_id)
        expiry = int(self._clock()) + self.token_expiry_secs
        return tokens.mint(self.keys.signing_key(), call_id, function_name, expiry), expiry

    def generate_token(self, function_name: str, call_id: str) -> str:
        return self.issue_token(function_name, call_id)[0]

    create_tool_token = generate_token

    def check_token(self, call_id: str, function_name: str, token: str) -> str | None:
        """Why the token is refused for this call and function, or None when it is valid."""
        parsed = tokens.parse(token)
        # Claims first: they cost no key, so an expired or misdirected token never makes
        # us fetch a key.
        reason = tokens.check_claims(parsed, call_id, function_name, self._clock())
        if reason:
            return reason
        if tokens.signed_by(parsed, self.keys.verification_keys()):
            return None
        if self.keys.refresh() and tokens.signed_by(parsed, self.keys.verification_keys()):
            return None
        return tokens.BAD_SIGNATURE

    def validate_token(self, call_id: str, function_name: str, token: str) -> bool:
        return self.check_token(call_id, function_name, token) is None

    def validate_tool_token(self, function_name: str, token: str, call_id: str) -> bool:
        return self.check_token(call_id, function_name, token) is None

    def debug_token(self, token: str) -> dict[str, Any] | None:
        """The token's fields, unverified, for logs and debugging; None when malformed.

        Shaped like the SDK's answer, so its agents' debug logging reads it; the signature
        is cut to 8 characters.
        """
        parsed = tokens.parse(token)
        if parsed is None:
            return None
        now = int(self._clock())
        return {
            "valid_format": True,
            "components": {
                "call_id": parsed.call_id,
                "function": parsed.function_name,
                "expiry": str(parsed.expiry),
                "expiry_date": datetime.fromtimestamp(parsed.expiry, UTC).isoformat(),
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

    def get_session_metadata(self, session_id: str) -> dict[str, Any]:
        return self.store.get(session_id)

    def set_session_metadata(
        self, session_id: str, metadata: Mapping[str, Any] | str, value: Any = _UNSET
    ) -> Any:
        """Merge `metadata` into the session and return the result; a None value removes
        its key. The SDK's form `(session_id, key, value)` also works and returns True."""
        if value is not _UNSET:
            if not isinstance(metadata, str):
                raise InvalidInputError("with a value, the second argument is the key")
            self.store.merge(session_id, {metadata: value})
            return True
        return self.store.merge(session_id, metadata)

    def replace_session_metadata(
        self, session_id: str, metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.store.replace(session_id, metadata)

    def delete_session_metadata(self, session_id: str) -> bool:
        return self.store.delete(session_id)

    def cleanup(self, max_age_secs: int | None = None) -> int:
        return self.store.cleanup(max_age_secs)
