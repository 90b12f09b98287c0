"""Signing keys: one fixed key, or the AWSCURRENT and AWSPREVIOUS versions of a secret.

Both sources answer `signing_key()` and `verification_keys()` (newest first) and
`refresh()`, which a verifier calls when a signature matches no key it holds: after a
rotation, an instance whose cache is older than the rotation has to look again before it
refuses a token that a fresher instance signed with the new key.

Powertools' parameters utility is not used here: its cache key ignores `VersionStage`,
so AWSCURRENT and AWSPREVIOUS of one secret would overwrite each other, and it has no
"keep the last good value when AWS is down" mode, which a signer needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Protocol

from . import deadline, wire_logs
from .aws import call_aws
from .errors import ConfigurationError, UnavailableError

if TYPE_CHECKING:  # stubs only: nothing of mypy_boto3 is imported at run time
    from mypy_boto3_secretsmanager import SecretsManagerClient

MIN_KEY_CHARS = 32
# A token whose signature matches nothing may trigger a refetch at most this often, so a
# flood of forged tokens cannot turn into a flood of Secrets Manager calls.
MIN_REFRESH_INTERVAL_SECS = 10.0
# With a key in hand, a fetch is optional: it may take this long, no more, so that an
# outage of Secrets Manager leaves the request time for its real work (and a forged
# token's refetch cannot eat the whole invocation).
CACHED_FETCH_SECS = 2.0

logger = logging.getLogger(__name__)


def key_bytes(secret: object, source: str) -> bytes:
    """The key as the SDK uses it: the string's UTF-8 bytes, at least 32 characters."""
    if not isinstance(secret, str) or len(secret) < MIN_KEY_CHARS:
        raise ConfigurationError(
            f"{source}: the signing key must be a string of at least {MIN_KEY_CHARS} characters"
        )
    return secret.encode("utf-8")


class SigningKeys(Protocol):
    def signing_key(self) -> bytes: ...
    def verification_keys(self) -> list[bytes]: ...
    def refresh(self) -> bool: ...


class StaticKey:
    """A key given in code: the only key, no AWS call, nothing to refresh."""

    def __init__(self, secret: str) -> None:
        self._key = key_bytes(secret, "secret_key")

    def signing_key(self) -> bytes:
        return self._key

    def verification_keys(self) -> list[bytes]:
        return [self._key]

    def refresh(self) -> bool:
        return False


class SecretsManagerKeys:
    """AWSCURRENT signs; AWSCURRENT then AWSPREVIOUS verify. Cached per instance.

    AWSPREVIOUS is fetched only when a signature fails against AWSCURRENT, so signing and
    the common validation cost one GetSecretValue per cache period, not two.
    """

    def __init__(
        self,
        secret_id: str,
        client_factory: Callable[[], SecretsManagerClient],
        cache_secs: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._client_factory = client_factory
        self._cache_secs = cache_secs
        self._clock = clock
        self._lock = threading.Lock()
        self._current: bytes | None = None
        self._current_at = 0.0
        self._previous: bytes | None = None
        self._previous_loaded = False  # AWSPREVIOUS fetched since AWSCURRENT last changed
        self._previous_asked = False  # ... or at least asked for, even if AWS did not answer
        self._last_refresh = float("-inf")

    def signing_key(self) -> bytes:
        # Lock-free while the cached key is fresh: each attribute read is atomic, and a
        # reader racing a reload gets the key that was current a moment ago, as it would
        # by taking the lock just before the reload. Only a load takes the lock.
        current = self._current
        if current is not None and self._clock() - self._current_at < self._cache_secs:
            return current
        with self._lock:
            if self._current is None or self._clock() - self._current_at >= self._cache_secs:
                self._load_current()
            assert self._current is not None  # set, or _load_current raised
            return self._current

    def verification_keys(self) -> list[bytes]:
        current = self.signing_key()
        previous = self._previous  # one atomic read: no lock needed
        return [current] if previous is None else [current, previous]

    def refresh(self) -> bool:
        """Look again for keys this instance lacks; True when there are new ones to try."""
        with self._lock:
            now = self._clock()
            # The first miss after a change of AWSCURRENT always looks: AWSPREVIOUS has not
            # been asked for yet. Later misses (forgeries, mostly) look at most every 10 s,
            # also while Secrets Manager fails to answer: an outage must not lift the limit.
            if self._previous_asked and now - self._last_refresh < MIN_REFRESH_INTERVAL_SECS:
                return False
            self._last_refresh = now
            before = (self._current, self._previous)
            answered = self._load_current()
            if not self._previous_loaded:
                self._previous_asked = True
                # AWS not answering for AWSCURRENT will not answer for AWSPREVIOUS either:
                # never chain a second slow fetch onto the first.
                if answered:
                    self._load_previous()
            return (self._current, self._previous) != before

    def _load_current(self) -> bool:
        """Fetch AWSCURRENT; False when no new key came and the cached key stays."""
        try:
            key = self._fetch("AWSCURRENT")
            if key is None:
                raise ConfigurationError(f"secret {self._secret_id!r} has no AWSCURRENT version")
        except UnavailableError:
            if self._current is None:
                raise
            # A cached key beats an outage: tokens keep working until AWS is back.
            logger.warning("Secrets Manager unreachable; signing with the cached key")
            self._current_at = self._clock()
            return False
        except ConfigurationError as error:
            if self._current is None:
                raise
            # Someone put a value that is no key: keep signing with the last good one (a
            # refresh must not turn a refusal into an error) and say so, loudly, each
            # cache period, until the secret is fixed.
            logger.error("%s; signing with the cached key", error)
            self._current_at = self._clock()
            return False
        if key != self._current:
            # Rotated (or first load): whatever AWSPREVIOUS we held may be two rotations old.
            self._previous, self._previous_loaded, self._previous_asked = None, False, False
        self._current, self._current_at = key, self._clock()
        return True

    def _load_previous(self) -> None:
        try:
            self._previous = self._fetch("AWSPREVIOUS")  # None until the first rotation
        except UnavailableError:
            logger.warning("Secrets Manager unreachable; validating with AWSCURRENT only")
            return
        except ConfigurationError as error:
            # A version that holds no key verifies nothing: skip it. A token it "signed"
            # is then refused as bad_signature, as any other forgery is, never an error.
            logger.warning("%s; validating with AWSCURRENT only", error)
            self._previous = None
        self._previous_loaded = True

    def _fetch(self, stage: str) -> bytes | None:
        client = self._client_factory()
        # Only the first key is worth the whole request's time.
        budget = deadline.at_most(CACHED_FETCH_SECS) if self._current else nullcontext()
        with budget, wire_logs.hidden():
            response = call_aws(
                lambda: client.get_secret_value(SecretId=self._secret_id, VersionStage=stage),
                absent=("ResourceNotFoundException",),
            )
        if response is None:
            return None
        if "SecretString" not in response:
            raise ConfigurationError(f"secret {self._secret_id!r} ({stage}) holds no SecretString")
        return key_bytes(response["SecretString"], f"secret {self._secret_id!r} ({stage})")
