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
    # Every RotationIntervalDays days in a 2-hour window from midnight UTC (test_deploy.py
    # holds the window against the rotation function's minimum).
    assert properties["RotationRules"] == {
        "ScheduleExpression": {"Fn::Sub": "rate(${RotationIntervalDays} days)"},
        "Duration": "2h",
    }
    assert PARAMETERS["RotationIntervalDays"]["Default"] == 30


def test_rotation_can_be_turned_off():
    assert CONDITIONS["RotateKey"] == {"Fn::Equals": [{"Ref": "KeyRotation"}, "true"]}
    assert PARAMETERS["KeyRotation"]["AllowedValues"] == ["true", "false"]
    for resource in (ROTATION, PERMISSION, SCHEDULE):
        assert resource["Condition"] == "RotateKey"


def test_no_accepted_parameters_let_a_schedule_retire_a_key_whose_tokens_are_live():
    """CloudFormation Rules can neither add nor compare numbers, so the parameters' bounds
    carry the rule: at their worst, 2 x lifetime + cache is still under the least time
    between two rotations, (shortest interval - 1) days (tests/template/test_deploy.py
    derives it from the schedule). rotate_signing_key checks the same rule against the
    key's real age."""
    expiry, cache = PARAMETERS["TokenExpirySecs"], PARAMETERS["SecretCacheSecs"]
    closest_rotations_secs = (PARAMETERS["RotationIntervalDays"]["MinValue"] - 1) * 86400
    assert 2 * expiry["MaxValue"] + cache["MaxValue"] <= closest_rotations_secs
    assert expiry["MaxValue"] >= expiry["Default"] and cache["MaxValue"] >= cache["Default"]


# -- the token modes ------------------------------------------------------------------------------


def test_both_modes_are_parameters_off_by_default_reaching_every_function():
    assert PARAMETERS["TokenRevocation"]["Default"] == "false"
    assert PARAMETERS["TokenRevocation"]["AllowedValues"] == ["true", "false"]
    assert PARAMETERS["SingleUseTokens"]["Default"] == "false"
    variables = DOC["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TOKEN_REVOCATION"] == {"Ref": "TokenRevocation"}
    assert variables["SINGLE_USE_TOKENS"] == {"Ref": "SingleUseTokens"}


# SINGLE_USE_TOKENS: on or off in the usual spellings of a boolean, any case; else function
# names, none of them a word that reads as on, off or "all" (ambiguous: refused at start).
SINGLE_USE_ACCEPTED = [
    *("true", "false", "yes", "no", "on", "off", "1", "0", "enabled", "disabled"),
    *("TRUE", "False", "Yes", "NO", "On", "OFF", "Enabled", "DISABLED", "tRuE"),
    *("refund", "refund,transfer_call", "_x1", "validate_token", "Yes_please", "only"),
    *("a" * 64, "ontime,offline", "allow,nobody"),
]
SINGLE_USE_REFUSED = [
    *("", "refund,", ",refund", "get-weather", "a b", "1abc", "x,,y", "a" * 65, " true"),
    *("all", "ALL", "All", "none", "None"),  # which functions? refused as ambiguous
    *("refund,yes", "yes,refund", "refund,all", "true,false", "refund,Off,x", "1,refund"),
    *("2", "10", "true,"),
]
SINGLE_USE_OFF = {"false", "no", "off", "0", "disabled"}


def test_single_use_tokens_accepts_what_the_layer_reads():
    pattern = re.compile(PARAMETERS["SingleUseTokens"]["AllowedPattern"])
    for good in SINGLE_USE_ACCEPTED:
        assert pattern.fullmatch(good), good
        if good.lower() not in {"true", "yes", "on", "1", "enabled"} | SINGLE_USE_OFF:
            assert all(FUNCTION_NAME.fullmatch(name) for name in good.split(",")), good
    for bad in SINGLE_USE_REFUSED:
        assert not pattern.fullmatch(bad), bad


def test_single_use_tokens_grants_its_write_unless_it_is_off():
    """The grant's condition reads off in its usual spellings (lower, capitalised, upper)."""
    for value in SINGLE_USE_ACCEPTED:
        off = value.lower() in SINGLE_USE_OFF
        if off and value not in (value.lower(), value.capitalize(), value.upper()):
            continue  # an odd case (fAlSe) only grants a write the code never makes
        granted = template.resolve({"Condition": "SingleUse"}, {}, {"SingleUseTokens": value})
        assert granted is not off, value


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
    assert CONDITIONS["SingleUse"]["Fn::Not"]  # off unless named so (test above)
    assert conditional_grants("validate_token") == {
        "RevokeTokens": {"dynamodb:GetItem"},  # the revocation marker
        "SingleUse": {"dynamodb:PutItem"},  # the used-token record
    }
    assert conditional_grants("delete_metadata") == {"RevokeTokens": {"dynamodb:PutItem"}}
    for name in ("get_metadata", "set_metadata", "create_token", "rotate_signing_key"):
        assert conditional_grants(name) == {}, name
