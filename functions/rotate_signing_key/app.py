"""The signing key's rotation: Secrets Manager's four steps, for a secret that is the key.

Secrets Manager calls this function once per step, with the same ClientRequestToken (the
new version's id) for the four: createSecret, setSecret, testSecret, finishSecret. It may
call a step again after a failure or a timeout, so every step is a no-op when its work is
already done. Before each step, as the protocol requires: rotation must be enabled on the
secret, and the token's version must be staged as AWSPENDING (or already be AWSCURRENT:
then the rotation is over, and the step has nothing to do).

No key is ever logged: only version ids and the step. Every AWS call here carries a key
(GetSecretValue's answer, GetRandomPassword's, PutSecretValue's parameters) or sits next
to one, so each step runs with botocore's wire logs hidden, whatever the log level.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from session_manager import aws, tokens, wire_logs
from session_manager.errors import ConfigurationError
from session_manager.keys import key_bytes
from session_manager.settings import Settings
from session_manager.telemetry import logger

if TYPE_CHECKING:  # stubs only: nothing of mypy_boto3 is imported at run time
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import GetSecretValueResponseTypeDef

# What the template's GenerateSecretString makes: 64 letters and digits. No punctuation
# keeps the key safe to paste into a shell or an environment variable.
KEY_LENGTH = 64
CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"

clock = time.time  # the tests set it
# The same settings as the HTTP functions', read at start: a bad value fails here, by name.
settings = Settings.from_env()
_client: SecretsManagerClient | None = None
_client_lock = threading.Lock()


class RotationError(Exception):
    """The rotation cannot go on; Secrets Manager records the failure and retries later."""


def secrets_client() -> SecretsManagerClient:
    global _client
    with _client_lock:
        if _client is None:
            _client = aws.client("secretsmanager")
        return _client


def handler(event: dict[str, Any], context: Any) -> None:
    step = event.get("Step")
    secret_id = event.get("SecretId")
    token = event.get("ClientRequestToken")
    if step not in STEPS or not isinstance(secret_id, str) or not isinstance(token, str):
        raise RotationError(f"not a rotation event (step {step!r})")
    with wire_logs.hidden():
        run_step(secrets_client(), step, secret_id, token)


def run_step(client: SecretsManagerClient, step: str, secret_id: str, token: str) -> None:
    """The step, if the protocol's preconditions hold and it has anything left to do."""
    described = client.describe_secret(SecretId=secret_id)
    if not described.get("RotationEnabled"):
        raise RotationError("rotation is not enabled on the secret")
    versions: dict[str, list[str]] = described.get("VersionIdsToStages", {})
    stages = versions.get(token)
    if stages is None:
        raise RotationError(f"version {token} is not a version of the secret")
    if CURRENT in stages:
        logger.info("version is already AWSCURRENT: nothing to do", extra={"step": step})
        return
    if PENDING not in stages:
        raise RotationError(f"version {token} is not staged as AWSPENDING")
    STEPS[step](client, secret_id, token, versions)
    logger.info("rotation step done", extra={"step": step, "version": token})


def create_secret(
    client: SecretsManagerClient, secret_id: str, token: str, versions: dict[str, list[str]]
) -> None:
    """A new key as AWSPENDING under the token's version; nothing when it exists already."""
    current = client.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    check_rotation_is_not_too_soon(current, versions)
    try:
        client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
        return  # made by an earlier attempt of this step
    except ClientError as error:
        # Secrets Manager stages the version before the first step, without a value.
        if aws.error_code(error) != "ResourceNotFoundException":
            raise
    key = client.get_random_password(PasswordLength=KEY_LENGTH, ExcludePunctuation=True)
    try:
        client.put_secret_value(
            SecretId=secret_id,
            ClientRequestToken=token,
            SecretString=key["RandomPassword"],
            VersionStages=[PENDING],
        )
    except ClientError as error:
        # A concurrent attempt of this step put its own key first: keep that one.
        if aws.error_code(error) != "ResourceExistsException":
            raise


def set_secret(
    client: SecretsManagerClient, secret_id: str, token: str, versions: dict[str, list[str]]
) -> None:
    """Nothing to do. Other rotations tell a database or a service its new password here;
    this key is known only to this secret, which every instance reads (AWSCURRENT signs,
    AWSPREVIOUS still verifies), so there is no one downstream to tell."""


def test_secret(
    client: SecretsManagerClient, secret_id: str, token: str, versions: dict[str, list[str]]
) -> None:
    """The pending key signs a token that verifies with it, in the format the layer mints."""
    check_pending_key(client, secret_id, token)


def finish_secret(
    client: SecretsManagerClient, secret_id: str, token: str, versions: dict[str, list[str]]
) -> None:
    """AWSCURRENT moves to the new version; Secrets Manager labels the old one AWSPREVIOUS,
    which keeps validating tokens signed before the rotation.

    Only after testSecret's check passes again, here: called out of order (before
    createSecret put a key, or after something put a bad one), the move would make a
    version without a usable key AWSCURRENT, and every instance would stop minting."""
    check_pending_key(client, secret_id, token)
    (current,) = [version for version, stages in versions.items() if CURRENT in stages]
    client.update_secret_version_stage(
        SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=token, RemoveFromVersionId=current
    )


def check_pending_key(client: SecretsManagerClient, secret_id: str, token: str) -> None:
    """testSecret's check: the pending version holds a key (a string of 32+ characters)
    that signs a token, in the format the layer mints, which verifies with it."""
    try:
        pending = client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
        key = key_bytes(pending.get("SecretString"), "AWSPENDING")
    except ClientError as error:
        if aws.error_code(error) != "ResourceNotFoundException":
            raise
        raise RotationError(f"the pending version {token} holds no key yet") from None
    except ConfigurationError as error:  # its message names the stage, never the value
        raise RotationError(f"the pending version {token} holds no usable key: {error}") from None
    expiry = int(clock()) + 60
    parsed = tokens.parse(tokens.mint(key, "rotation-test", "rotation_test", expiry))
    if (
        parsed is None
        or tokens.check_claims(parsed, "rotation-test", "rotation_test", clock())
        or not tokens.signed_by(parsed, [key])
    ):
        raise RotationError("a token signed with the pending key does not verify")


def minimum_interval_secs() -> int:
    """Twice a token's lifetime plus the key cache (see check_rotation_is_not_too_soon)."""
    return 2 * settings.token_expiry_secs + settings.secret_cache_secs


def check_rotation_is_not_too_soon(
    current: GetSecretValueResponseTypeDef, versions: dict[str, list[str]]
) -> None:
    """Refuse to retire AWSPREVIOUS while tokens signed with it may still be live.

    Finishing this rotation drops the AWSPREVIOUS key. Instances kept signing with it for
    up to SECRET_CACHE_SECS after it stopped being AWSCURRENT (when the current version was
    made), and those tokens live TOKEN_EXPIRY_SECS; twice the lifetime leaves a margin. The
    template's schedule can't be that short (its parameter bounds), but a `rotate-secret`
    by hand can. Before the first rotation there is no AWSPREVIOUS, and nothing to wait for.
    """
    if not any(PREVIOUS in stages for stages in versions.values()):
        return
    created = current.get("CreatedDate")
    if not isinstance(created, datetime):
        return
    age = clock() - created.timestamp()
    wait = minimum_interval_secs() - age
    if wait > 0:
        raise RotationError(
            f"the current key is {int(age)} s old; rotating now would refuse live tokens "
            f"signed with the previous one: retry in {int(wait) + 1} s"
        )


STEPS: dict[str, Callable[[SecretsManagerClient, str, str, dict[str, list[str]]], None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}
