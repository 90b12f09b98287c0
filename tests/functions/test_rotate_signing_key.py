"""rotate_signing_key under moto, driven step by step as Secrets Manager drives it.

moto's RotateSecret stages the new version (an empty AWSPENDING with RotateImmediately,
a copy of the current key without) and "invokes" the function without running its code
(no Docker): so each test starts the rotation with RotateSecret, then calls the handler
with the four steps' events itself, and after finishSecret removes AWSPENDING, as Secrets
Manager does once the last step succeeds.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from lambda_harness import import_handler
from moto import mock_aws

from devtools import aws_local, template
from devtools.context import LambdaContext
from session_manager import ConfigurationError, SessionManager, tokens

STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]
SPEC = {f.name: f for f in template.functions(http_only=False)}["rotate_signing_key"]
EVENTS = sorted((template.ROOT / "events").glob("rotate_signing_key*.json"))
MIN_INTERVAL = 2 * 900 + 300  # the template's defaults: 2 x TokenExpirySecs + SecretCacheSecs


@pytest.fixture
def aws() -> Iterator[None]:
    """tests/conftest.py's, with moto's Lambda kept from running code in Docker."""
    aws_local.make_moto_dynamodb_atomic()
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def rotation_lambda_arn(aws) -> str:
    """A function in moto's Lambda for RotationLambdaARN (moto only checks it exists)."""
    role = boto3.client("iam").create_role(
        RoleName="rotation", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    return boto3.client("lambda").create_function(
        FunctionName="rotate_signing_key",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]


class Rotation:
    """The secret, the rotation function (imported afresh) and Secrets Manager's part."""

    def __init__(self, module: Any, secretsmanager: Any, secret: str, lambda_arn: str):
        self.module = module
        self.sm = secretsmanager
        self.secret_arn = secretsmanager.describe_secret(SecretId=secret)["ARN"]
        self.lambda_arn = lambda_arn
        self.now = module.clock()
        module.clock = lambda: self.now

    def start(self, immediately: bool = True) -> str:
        token = str(uuid.uuid4())
        self.sm.rotate_secret(
            SecretId=self.secret_arn,
            ClientRequestToken=token,
            RotationLambdaARN=self.lambda_arn,
            RotationRules={"AutomaticallyAfterDays": 30},
            RotateImmediately=immediately,
        )
        return token

    def step(self, step: str, token: str) -> None:
        event = {"Step": step, "SecretId": self.secret_arn, "ClientRequestToken": token}
        self.module.handler(event, LambdaContext.for_function(SPEC))

    def complete(self, token: str) -> None:
        """Secrets Manager's own last move: AWSPENDING off the new (now current) version."""
        self.sm.update_secret_version_stage(
            SecretId=self.secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
        )

    def rotate(self) -> str:
        token = self.start()
        for step in STEPS:
            self.step(step, token)
        self.complete(token)
        return token

    def value(self, stage: str) -> str:
        return self.sm.get_secret_value(SecretId=self.secret_arn, VersionStage=stage)[
            "SecretString"
        ]

    def stages(self) -> dict[str, list[str]]:
        versions = self.sm.describe_secret(SecretId=self.secret_arn)["VersionIdsToStages"]
        return {version: sorted(stages) for version, stages in versions.items()}


@pytest.fixture
def rotation(env, secretsmanager, secret, rotation_lambda_arn) -> Iterator[Rotation]:
    module, _ = import_handler(SPEC)
    yield Rotation(module, secretsmanager, secret, rotation_lambda_arn)


@pytest.fixture
def new_manager(env) -> Callable[[], SessionManager]:
    """A new (cold) instance of the functions' manager, as configured by the template."""
    return SessionManager.from_env


def signed_with(token: str, key: str) -> bool:
    parsed = tokens.parse(token)
    return parsed is not None and tokens.signed_by(parsed, [key.encode()])


# -- the whole rotation -----------------------------------------------------------------------


def test_a_rotation_makes_a_new_key_and_old_tokens_still_validate(
    rotation, new_manager, signing_key
):
    before = new_manager()
    old_token = before.generate_token("get_weather", "call-1")

    rotation.rotate()

    new_key = rotation.value("AWSCURRENT")
    assert new_key != signing_key
    # Shaped as the template's GenerateSecretString makes it.
    assert re.fullmatch(r"[A-Za-z0-9]{64}", new_key)
    assert rotation.value("AWSPREVIOUS") == signing_key
    after = new_manager()
    new_token = after.generate_token("get_weather", "call-2")
    assert signed_with(new_token, new_key)
    assert after.check_token("call-1", "get_weather", old_token) is None
    # The warm instance that cached the old key meets a new-key token: it looks again.
    assert before.check_token("call-2", "get_weather", new_token) is None


def test_awscurrent_moves_only_at_finish_secret(rotation, signing_key):
    token = rotation.start()
    for step in STEPS[:3]:
        rotation.step(step, token)
        assert rotation.value("AWSCURRENT") == signing_key, step
        assert "AWSCURRENT" not in rotation.stages()[token], step
    pending = rotation.sm.get_secret_value(
        SecretId=rotation.secret_arn, VersionId=token, VersionStage="AWSPENDING"
    )["SecretString"]
    rotation.step("finishSecret", token)
    assert rotation.value("AWSCURRENT") == pending
    assert "AWSCURRENT" in rotation.stages()[token]


# -- retries ----------------------------------------------------------------------------------


def test_a_retried_step_changes_nothing(rotation):
    token = rotation.start()
    rotation.step("createSecret", token)
    pending = rotation.sm.get_secret_value(SecretId=rotation.secret_arn, VersionId=token)
    stages = rotation.stages()
    for step in STEPS[:3]:
        rotation.step(step, token)
        again = rotation.sm.get_secret_value(SecretId=rotation.secret_arn, VersionId=token)
        assert again["SecretString"] == pending["SecretString"], step
        assert rotation.stages() == stages, step

    rotation.step("finishSecret", token)
    finished = rotation.stages()
    current = rotation.value("AWSCURRENT")
    for step in STEPS:  # every step after the rotation is over: nothing to do
        rotation.step(step, token)
        assert rotation.stages() == finished, step
        assert rotation.value("AWSCURRENT") == current, step


# -- failures ---------------------------------------------------------------------------------


def test_a_failing_test_secret_leaves_awscurrent_untouched(rotation, new_manager, signing_key):
    token = rotation.start()
    rotation.step("createSecret", token)
    # Something put a value that is no key (too short) into the pending version.
    rotation.sm.put_secret_value(
        SecretId=rotation.secret_arn,
        ClientRequestToken=token,
        SecretString="too-short",
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(Exception, match="at least 32 characters") as raised:
        rotation.step("testSecret", token)
    assert "too-short" not in str(raised.value)  # no key material in the error
    assert rotation.value("AWSCURRENT") == signing_key
    assert "AWSCURRENT" not in rotation.stages()[token]
    manager = new_manager()
    assert signed_with(manager.generate_token("get_weather", "call-1"), signing_key)


@pytest.mark.parametrize("pending", [None, "too-short", "x" * 31])
def test_finish_secret_refuses_a_pending_version_without_a_valid_key(
    rotation, new_manager, signing_key, pending
):
    """Invoked out of order (before createSecret, or after a bad value was put), finishSecret
    would make AWSCURRENT a version with no usable key, and minting would fail."""
    token = rotation.start()  # AWSPENDING staged, no value yet
    if pending is not None:
        rotation.sm.put_secret_value(
            SecretId=rotation.secret_arn,
            ClientRequestToken=token,
            SecretString=pending,
            VersionStages=["AWSPENDING"],
        )
    with pytest.raises(rotation.module.RotationError, match="pending") as raised:
        rotation.step("finishSecret", token)
    if pending is not None:
        assert pending not in str(raised.value)
    assert rotation.value("AWSCURRENT") == signing_key
    assert "AWSCURRENT" not in rotation.stages()[token]
    assert signed_with(new_manager().generate_token("get_weather", "call-1"), signing_key)


def test_rotation_must_be_enabled(rotation, signing_key):
    (current,) = rotation.stages()
    with pytest.raises(rotation.module.RotationError, match="not enabled"):
        rotation.step("createSecret", current)
    assert rotation.value("AWSCURRENT") == signing_key


def test_the_version_must_be_staged_as_awspending(rotation, signing_key):
    first = rotation.rotate()
    rotation.now += MIN_INTERVAL
    (previous,) = [v for v, s in rotation.stages().items() if "AWSPREVIOUS" in s]
    with pytest.raises(rotation.module.RotationError, match="not staged as AWSPENDING"):
        rotation.step("finishSecret", previous)
    with pytest.raises(rotation.module.RotationError, match="not a version"):
        rotation.step("createSecret", str(uuid.uuid4()))
    assert "AWSCURRENT" in rotation.stages()[first]


def test_an_event_that_is_not_a_rotation_is_refused(rotation):
    for event in ({}, {"Step": "dropSecret", "SecretId": "x", "ClientRequestToken": "t"}):
        with pytest.raises(rotation.module.RotationError, match="not a rotation event"):
            rotation.module.handler(event, None)


# -- rotating too soon ------------------------------------------------------------------------


def test_a_rotation_sooner_than_the_minimum_interval_is_refused_until_it_is_safe(
    rotation, new_manager
):
    """The second rotation would drop the first key while its tokens may still be live."""
    rotation.rotate()
    first_current = rotation.value("AWSCURRENT")
    token = rotation.start()
    rotation.now += MIN_INTERVAL - 5
    with pytest.raises(rotation.module.RotationError, match="retry in"):
        rotation.step("createSecret", token)
    assert rotation.value("AWSCURRENT") == first_current

    rotation.now += 10  # Secrets Manager retries later, with the same token
    for step in STEPS:
        rotation.step(step, token)
    assert rotation.value("AWSCURRENT") != first_current
    assert rotation.value("AWSPREVIOUS") == first_current


@pytest.mark.parametrize("name", ["TOKEN_EXPIRY_SECS", "SECRET_CACHE_SECS"])
def test_the_function_reads_its_settings_as_the_layer_does(env, monkeypatch, name):
    """The same settings, read by the same code at start: a value the layer refuses is
    refused here too, by name, not met in some later rotation as a bare ValueError."""
    monkeypatch.setenv(name, "ten")
    with pytest.raises(ConfigurationError, match=name):
        import_handler(SPEC)


# -- RotateImmediately=False: Secrets Manager only tests the configuration ----------------------


def test_the_configuration_test_passes_with_the_current_key_copied(rotation, signing_key):
    token = rotation.start(immediately=False)
    rotation.step("testSecret", token)
    assert rotation.value("AWSCURRENT") == signing_key


# -- logs and events ----------------------------------------------------------------------------


def test_no_key_reaches_the_logs(rotation, output, signing_key):
    output()
    rotation.rotate()
    text = output().text
    assert "rotation step done" in text
    assert signing_key not in text
    assert rotation.value("AWSCURRENT") not in text


def test_no_key_reaches_the_logs_at_debug(rotation, output, signing_key, everything_logged):
    """botocore's wire logs at DEBUG: GetSecretValue's answer is the current key (in
    createSecret) and the pending one (in testSecret), GetRandomPassword's is the new key,
    PutSecretValue's parameters hold it. Every call of every step stays quiet."""
    output()
    token = rotation.rotate()
    text = everything_logged.text() + output().text
    new_key = rotation.value("AWSCURRENT")  # read after: its own answer is logged
    # Wire logging was on (so this test can fail): the test's RotateSecret answer is there.
    assert "Response body" in text and "RotateSecret" in text
    assert token in text  # the version id is no secret, and is logged
    assert everything_logged.leaked(signing_key, text) == []
    assert everything_logged.leaked(new_key, text) == []


@pytest.mark.parametrize("path", EVENTS, ids=[p.name for p in EVENTS])
def test_each_sample_event_is_a_rotation_step(path):
    event = json.loads(path.read_text(encoding="utf-8"))
    assert event["Step"] in STEPS
    assert set(event) == {"Step", "SecretId", "ClientRequestToken"}


def test_there_is_a_sample_event_per_step():
    steps = {json.loads(p.read_text(encoding="utf-8"))["Step"] for p in EVENTS}
    assert steps == set(STEPS)


def test_the_sample_events_drive_a_rotation(rotation):
    """The four sample events, in order, with the secret and token of this test."""
    token = rotation.start()
    by_step = {json.loads(p.read_text(encoding="utf-8"))["Step"]: p for p in EVENTS}
    for step in STEPS:
        event = json.loads(by_step[step].read_text(encoding="utf-8"))
        event.update(SecretId=rotation.secret_arn, ClientRequestToken=token)
        rotation.module.handler(event, None)
    assert "AWSCURRENT" in rotation.stages()[token]
