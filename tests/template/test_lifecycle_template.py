"""template.yaml's token lifecycle: the rotation function, its permission and schedule, the
bounds that keep a schedule from retiring a live key, and the two token modes' parameters
and conditional grants."""

from __future__ import annotations

import re
from typing import Any

from devtools import template
from session_manager.validation import FUNCTION_NAME

DOC = template.load()
RESOURCES: dict[str, dict[str, Any]] = DOC["Resources"]
PARAMETERS: dict[str, dict[str, Any]] = DOC["Parameters"]
CONDITIONS: dict[str, Any] = DOC["Conditions"]
ALL = {f.name: f for f in template.functions(http_only=False)}
TABLE_ARN = {"Fn::GetAtt": [template.table().logical_id, "Arn"]}
SECRET = {"Ref": template.secret_logical_id()}


def only(kind: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = template.resources(kind).items()
    return logical_id, resource


ROTATION_ID = ALL["rotate_signing_key"].logical_id
ROTATION = RESOURCES[ROTATION_ID]
PERMISSION_ID, PERMISSION = only("AWS::Lambda::Permission")
SCHEDULE_ID, SCHEDULE = only("AWS::SecretsManager::RotationSchedule")


# -- rotation -----------------------------------------------------------------------------------


def test_the_rotation_function_is_not_an_http_function():
    assert "rotate_signing_key" not in {f.name for f in template.functions()}
    assert ALL["rotate_signing_key"].routes == ()
    assert "Events" not in ROTATION["Properties"]
    assert ROTATION["Properties"]["CodeUri"] == "functions/rotate_signing_key"


def test_the_rotation_function_gets_only_the_protocols_calls_on_the_one_secret():
    (policy,) = ROTATION["Properties"]["Policies"]
    grants = {
        (action, repr(statement["Resource"]))
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert grants == {
        ("secretsmanager:DescribeSecret", repr(SECRET)),
        ("secretsmanager:GetSecretValue", repr(SECRET)),
        ("secretsmanager:PutSecretValue", repr(SECRET)),
        ("secretsmanager:UpdateSecretVersionStage", repr(SECRET)),
        ("secretsmanager:GetRandomPassword", repr("*")),  # it names no resource
    }


def test_secrets_manager_may_invoke_the_rotation_function_from_this_account_only():
    properties = PERMISSION["Properties"]
    assert properties["FunctionName"] == {"Fn::GetAtt": [ROTATION_ID, "Arn"]}
    assert properties["Action"] == "lambda:InvokeFunction"
    assert properties["Principal"] == "secretsmanager.amazonaws.com"
    assert properties["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_schedule_waits_for_the_permission_and_uses_the_interval_parameter():
    # Else the rotation that starts with the schedule can run before it may invoke.
    depends = SCHEDULE["DependsOn"]
    assert PERMISSION_ID in (depends if isinstance(depends, list) else [depends])
    properties = SCHEDULE["Properties"]
    assert properties["SecretId"] == SECRET
    assert properties["RotationLambdaARN"] == {"Fn::GetAtt": [ROTATION_ID, "Arn"]}
    assert properties["RotationRules"] == {
        "AutomaticallyAfterDays": {"Ref": "RotationIntervalDays"}
    }
    assert PARAMETERS["RotationIntervalDays"]["Default"] == 30


def test_rotation_can_be_turned_off():
    assert CONDITIONS["RotateKey"] == {"Fn::Equals": [{"Ref": "KeyRotation"}, "true"]}
    assert PARAMETERS["KeyRotation"]["AllowedValues"] == ["true", "false"]
    for resource in (ROTATION, PERMISSION, SCHEDULE):
        assert resource["Condition"] == "RotateKey"


def test_no_accepted_parameters_let_a_schedule_retire_a_key_whose_tokens_are_live():
    """CloudFormation Rules can neither add nor compare numbers, so the parameters' bounds
    carry the rule: at their worst, 2 x lifetime + cache is still under the shortest
    interval. rotate_signing_key checks the same rule against the key's real age."""
    expiry, cache = PARAMETERS["TokenExpirySecs"], PARAMETERS["SecretCacheSecs"]
    shortest_interval_secs = PARAMETERS["RotationIntervalDays"]["MinValue"] * 86400
    assert 2 * expiry["MaxValue"] + cache["MaxValue"] <= shortest_interval_secs
    assert expiry["MaxValue"] >= expiry["Default"] and cache["MaxValue"] >= cache["Default"]


# -- the token modes ------------------------------------------------------------------------------


def test_both_modes_are_parameters_off_by_default_reaching_every_function():
    assert PARAMETERS["TokenRevocation"]["Default"] == "false"
    assert PARAMETERS["TokenRevocation"]["AllowedValues"] == ["true", "false"]
    assert PARAMETERS["SingleUseTokens"]["Default"] == "false"
    variables = DOC["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TOKEN_REVOCATION"] == {"Ref": "TokenRevocation"}
    assert variables["SINGLE_USE_TOKENS"] == {"Ref": "SingleUseTokens"}


def test_single_use_tokens_accepts_what_the_layer_reads():
    pattern = re.compile(PARAMETERS["SingleUseTokens"]["AllowedPattern"])
    for good in ("true", "false", "refund", "refund,transfer_call", "_x1"):
        assert pattern.fullmatch(good), good
        assert good in ("true", "false") or all(FUNCTION_NAME.fullmatch(n) for n in good.split(","))
    for bad in ("", "refund,", "get-weather", "a b", "1abc", "x,,y"):
        assert not pattern.fullmatch(bad), bad


def conditional_grants(name: str) -> dict[str, set[str]]:
    """{condition: actions} of the function's `!If [condition, policy, NoValue]` grants."""
    grants: dict[str, set[str]] = {}
    for policy in RESOURCES[ALL[name].logical_id]["Properties"]["Policies"]:
        if "Fn::If" not in policy:
            continue
        condition, granted, otherwise = policy["Fn::If"]
        assert otherwise == {"Ref": "AWS::NoValue"}
        for statement in granted["Statement"]:
            assert statement["Resource"] == TABLE_ARN
            grants.setdefault(condition, set()).add(statement["Action"])
    return grants


def test_the_ledgers_table_calls_are_granted_only_in_their_mode():
    assert CONDITIONS["RevokeTokens"] == {"Fn::Equals": [{"Ref": "TokenRevocation"}, "true"]}
    assert CONDITIONS["SingleUse"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SingleUseTokens"}, "false"]}]
    }
    assert conditional_grants("validate_token") == {
        "RevokeTokens": {"dynamodb:GetItem"},  # the revocation marker
        "SingleUse": {"dynamodb:PutItem"},  # the used-token record
    }
    assert conditional_grants("delete_metadata") == {"RevokeTokens": {"dynamodb:PutItem"}}
    for name in ("get_metadata", "set_metadata", "create_token", "rotate_signing_key"):
        assert conditional_grants(name) == {}, name
