"""A clean first deploy and a clean update, held on what SAM makes of the template (the
CloudFormation that is deployed): every log group a function writes to exists before anything
can invoke the function; access logs under /aws/vendedlogs/; layer versions kept; a rotation
schedule whose closest two rotations are further apart than the rotation function requires;
and the hardening of issue 16 (permission scoped to the secret, diagnosable access logs,
alarms that say when they clear, an encrypted alarm topic)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from devtools import lambda_runtime, template

Resources = dict[str, dict[str, Any]]
DAY_SECS = 86400
PARAMETERS = template.load()["Parameters"]


def resources(translated: dict[str, Any], kind: str) -> Resources:
    return {i: r for i, r in translated["Resources"].items() if r["Type"] == kind}


def references(node: Any) -> set[str]:
    """The logical ids a value names: Ref, Fn::GetAtt, and ${Name} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                name = value[0] if isinstance(value, list) else value.split(".")[0]
                found.add(name)
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {n.split(".")[0] for n in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                found |= references(value[1:] if isinstance(value, list) else [])
            else:
                found |= references(value)
    return found


def created_before(translated: dict[str, Any], logical_id: str) -> set[str]:
    """Every resource CloudFormation must have created before this one (what it references
    or DependsOn, transitively)."""
    all_resources = translated["Resources"]
    seen: set[str] = set()
    pending = [logical_id]
    while pending:
        resource = all_resources[pending.pop()]
        depends = resource.get("DependsOn", [])
        direct = references(resource.get("Properties", {})) | set(
            depends if isinstance(depends, list) else [depends]
        )
        for name in direct & set(all_resources) - seen:
            seen.add(name)
            pending.append(name)
    return seen


def functions_invoked_by(translated: dict[str, Any], logical_id: str) -> set[str]:
    functions = resources(translated, "AWS::Lambda::Function")
    resource = translated["Resources"][logical_id]
    if resource["Type"] == "AWS::SecretsManager::RotationSchedule":
        return references(resource["Properties"]["RotationLambdaARN"]) & set(functions)
    return references(resource["Properties"]["FunctionName"]) & set(functions)


# -- log groups -------------------------------------------------------------------------------


def test_each_function_writes_to_its_own_log_group_which_it_depends_on(translated):
    """A function's log group is created before the function, so before anything can invoke
    it: Lambda never creates a group of its own that the stack's would collide with."""
    functions = resources(translated, "AWS::Lambda::Function")
    groups = resources(translated, "AWS::Logs::LogGroup")
    assert len(functions) == 6
    named = {}
    for logical_id, function in functions.items():
        config = function["Properties"].get("LoggingConfig", {})
        assert set(references(config.get("LogGroup"))) & set(groups), logical_id
        (group,) = references(config["LogGroup"])
        assert group in created_before(translated, logical_id), logical_id
        # Not named after the function (a cycle), nor shared with another function.
        assert logical_id not in created_before(translated, group), logical_id
        named[logical_id] = group
    assert len(set(named.values())) == len(named)
    for group in named.values():
        assert groups[group]["Properties"]["RetentionInDays"]


@pytest.mark.parametrize(
    "kind", ["AWS::Lambda::Permission", "AWS::SecretsManager::RotationSchedule"]
)
def test_nothing_can_invoke_a_function_before_its_log_group_exists(translated, kind):
    invokers = resources(translated, kind)
    assert invokers
    for logical_id in invokers:
        (function,) = functions_invoked_by(translated, logical_id)
        (group,) = references(
            translated["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]
        )
        assert group in created_before(translated, logical_id), (logical_id, group)


def test_the_rotation_schedule_waits_for_the_permission_and_the_log_group(translated):
    """The schedule rotates at once when it is created (and when KeyRotation is turned on)."""
    ((schedule_id, _),) = resources(translated, "AWS::SecretsManager::RotationSchedule").items()
    before = created_before(translated, schedule_id)
    (permission,) = [
        i
        for i, r in resources(translated, "AWS::Lambda::Permission").items()
        if r["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
    ]
    assert permission in before


def test_access_logs_go_to_a_vended_logs_group(translated):
    """Elsewhere, each stack adds to the account's CloudWatch Logs resource policy (5,120
    characters) until a stage fails to deploy."""
    (stage,) = resources(translated, "AWS::ApiGatewayV2::Stage").values()
    (group,) = references(stage["Properties"]["AccessLogSettings"]["DestinationArn"])
    name = translated["Resources"][group]["Properties"]["LogGroupName"]
    assert isinstance(name, str) and name.startswith("/aws/vendedlogs/"), name


def test_the_access_log_says_why_a_request_was_refused(translated):
    (stage,) = resources(translated, "AWS::ApiGatewayV2::Stage").values()
    log_format = stage["Properties"]["AccessLogSettings"]["Format"]
    for variable in ("$context.error.message", "$context.authorizer.error", "$context.status"):
        assert f'"{variable}"' in log_format, variable
    # One JSON document per request, whatever the variables hold (quoted strings).
    line = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", log_format))
    assert isinstance(line, dict) and "error" in line and "authorizerError" in line


# -- layers -----------------------------------------------------------------------------------


def test_layer_versions_outlive_an_update(translated):
    """Agent stacks pin the LayerArn output's version: deleting it on update strands them."""
    layers = resources(translated, "AWS::Lambda::LayerVersion")
    assert layers
    for logical_id, layer in layers.items():
        assert layer.get("DeletionPolicy") == "Retain", logical_id
    assert references(translated["Outputs"]["LayerArn"]["Value"]) <= set(layers)


# -- rotation ---------------------------------------------------------------------------------


def test_only_this_secrets_rotation_may_invoke_the_rotation_function(translated):
    (permission,) = [
        r["Properties"]
        for r in resources(translated, "AWS::Lambda::Permission").values()
        if r["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
    ]
    (secret,) = resources(translated, "AWS::SecretsManager::Secret")
    assert permission["SourceArn"] == {"Ref": secret}  # Ref of a secret is its ARN
    assert permission["SourceAccount"]


def rotation_window_secs(rules: dict[str, Any]) -> tuple[int, int]:
    """(interval, window) of a schedule, in seconds: Secrets Manager rotates at any time in
    the window. AutomaticallyAfterDays, or rate(N days) without a Duration, has the whole
    UTC day as its window."""
    if "AutomaticallyAfterDays" in rules:
        return int(rules["AutomaticallyAfterDays"]) * DAY_SECS, DAY_SECS
    match = re.fullmatch(r"rate\((\d+) days?\)", rules["ScheduleExpression"])
    assert match, rules["ScheduleExpression"]
    duration = re.fullmatch(r"(\d+)h", rules.get("Duration", "24h"))
    assert duration, rules["Duration"]
    return int(match.group(1)) * DAY_SECS, int(duration.group(1)) * 3600


def closest_rotations_secs(interval: int, window: int) -> int:
    """The least time between two rotations: two scheduled ones, interval - window apart at
    worst; one started at any time of day (the schedule's creation, or by hand) and the next
    scheduled one, dated from the day of the last, interval - 1 day apart at worst."""
    return min(interval - window, interval - DAY_SECS)


def rotation_minimum_secs(monkeypatch: pytest.MonkeyPatch) -> int:
    """What rotate_signing_key requires between two rotations, at the largest token lifetime
    and key cache the template accepts."""
    (spec,) = [f for f in template.functions(http_only=False) if f.name == "rotate_signing_key"]
    monkeypatch.setenv("TOKEN_EXPIRY_SECS", str(PARAMETERS["TokenExpirySecs"]["MaxValue"]))
    monkeypatch.setenv("SECRET_CACHE_SECS", str(PARAMETERS["SecretCacheSecs"]["MaxValue"]))
    handler = lambda_runtime.load_handler(spec)
    module = sys.modules[handler.__module__]
    minimum: int = module.minimum_interval_secs()
    return minimum


@pytest.mark.parametrize("days", [PARAMETERS["RotationIntervalDays"]["MinValue"], 30])
def test_no_accepted_interval_lets_two_rotations_come_closer_than_the_function_allows(
    sam_translate, monkeypatch, days
):
    """Otherwise rotate_signing_key refuses a scheduled rotation: the alarm fires and the
    AWSPENDING version is left behind."""
    translated = sam_translate({"RotationIntervalDays": str(days)})
    ((_, schedule),) = resources(translated, "AWS::SecretsManager::RotationSchedule").items()
    interval, window = rotation_window_secs(schedule["Properties"]["RotationRules"])
    assert interval == days * DAY_SECS
    assert closest_rotations_secs(interval, window) >= rotation_minimum_secs(monkeypatch)


def test_the_rotation_window_is_a_few_hours_from_midnight_utc(translated):
    ((_, schedule),) = resources(translated, "AWS::SecretsManager::RotationSchedule").items()
    rules = schedule["Properties"]["RotationRules"]
    assert "AutomaticallyAfterDays" not in rules  # a window of a whole day
    _, window = rotation_window_secs(rules)
    assert window <= 4 * 3600


# -- alarms -----------------------------------------------------------------------------------

ALARM_IDS = {
    "Api5xxRateAlarm",
    "TableThrottlesAlarm",
    "UnavailableAlarm",
    "InternalErrorAlarm",
    "BadSignatureAlarm",
    *(
        f"{function}{metric}Alarm"
        for function in (
            "GetMetadata",
            "SetMetadata",
            "DeleteMetadata",
            "CreateToken",
            "ValidateToken",
            "RotateSigningKey",
        )
        for metric in ("Errors", "Throttles")
    ),
}


def test_the_alarms_keep_their_logical_ids(translated):
    """Renaming an alarm replaces it (its history and state are lost)."""
    assert set(resources(translated, "AWS::CloudWatch::Alarm")) == ALARM_IDS


def test_every_alarm_notifies_when_it_clears_too(translated):
    alarms = resources(translated, "AWS::CloudWatch::Alarm")
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"], logical_id
        assert properties.get("OKActions") == properties["AlarmActions"], logical_id


def test_devtools_reads_the_alarms_as_sam_expands_them(translated):
    """devtools.template expands Fn::ForEach itself: the tests, the local API and the
    benchmarks see the resources SAM deploys."""
    ours = template.resources("AWS::CloudWatch::Alarm")
    assert set(ours) == ALARM_IDS
    sams = resources(translated, "AWS::CloudWatch::Alarm")
    ids = {logical_id: f"<{logical_id}>" for logical_id in template.load()["Resources"]}
    for logical_id, alarm in ours.items():
        mine = template.resolve(alarm["Properties"], ids)
        theirs = sams[logical_id]["Properties"]
        for key in ("Namespace", "MetricName", "Statistic", "Period", "ComparisonOperator"):
            assert mine.get(key) == theirs.get(key), (logical_id, key)
        assert str(mine["Threshold"]) == str(theirs["Threshold"]), logical_id
        if "Dimensions" in theirs:
            assert [d["Name"] for d in mine["Dimensions"]] == [
                d["Name"] for d in theirs["Dimensions"]
            ]


def test_the_created_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(translated):
    """Not alias/aws/sns: CloudWatch cannot use the AWS managed key, and alarms would not
    reach the topic."""
    (topic,) = resources(translated, "AWS::SNS::Topic").values()
    (key_id,) = references(topic["Properties"]["KmsMasterKeyId"])
    key = translated["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Condition"] == topic["Condition"]
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = [
        statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert cloudwatch and cloudwatch[0]["Effect"] == "Allow"
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
