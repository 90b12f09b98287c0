"""devtools.template.resolve: the template's intrinsic functions, as CloudFormation resolves
them, for the local API, the tests and the benchmarks (which deploy nothing)."""

from __future__ import annotations

import pytest

from devtools import template

IDS = {"SessionsTable": "local-table", "SigningSecret": "local-secret"}


def test_ref_gives_resources_parameters_and_pseudo_parameters():
    assert template.resolve({"Ref": "SessionsTable"}, IDS) == "local-table"
    assert template.resolve({"Ref": "TokenExpirySecs"}, IDS) == 900
    assert template.resolve({"Ref": "TokenExpirySecs"}, IDS, {"TokenExpirySecs": 60}) == 60
    assert template.resolve({"Ref": "AWS::StackName"}, IDS) == "signalwire-sessions"


def test_a_comma_delimited_list_parameter_is_a_list():
    assert template.resolve({"Ref": "JwtAudience"}, IDS, {"JwtAudience": "a,b"}) == ["a", "b"]


def test_fn_if_follows_the_templates_conditions_on_the_parameters():
    value = {"Fn::If": ["UseJwt", "jwt", "iam"]}
    assert template.resolve(value, IDS) == "iam"
    assert template.resolve(value, IDS, {"AuthMode": "JWT"}) == "jwt"
    # A condition built of others (Fn::And, Fn::Not, Condition).
    subscribe = {"Fn::If": ["SubscribeAlarmEmail", "yes", "no"]}
    assert template.resolve(subscribe, IDS) == "no"
    assert template.resolve(subscribe, IDS, {"AlarmEmail": "ops@example.com"}) == "yes"
    given_topic = {"AlarmEmail": "ops@example.com", "AlarmTopicArn": "arn:topic"}
    assert template.resolve(subscribe, IDS, given_topic) == "no"


def test_no_value_removes_the_property_or_the_list_item():
    value = {"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}], "c": 2}
    assert template.resolve(value, IDS) == {"b": [1], "c": 2}


def test_fn_sub_with_references_variables_and_literals():
    assert template.resolve({"Fn::Sub": "/aws/lambda/${SessionsTable}"}, IDS) == (
        "/aws/lambda/local-table"
    )
    assert template.resolve({"Fn::Sub": ["${A}-${AWS::Region}", {"A": "x"}]}, IDS) == (
        "x-us-east-1"
    )
    assert template.resolve({"Fn::Sub": "${!Literal}"}, IDS) == "${Literal}"


def test_join_select_split():
    assert template.resolve({"Fn::Join": ["-", ["a", {"Ref": "SessionsTable"}]]}, IDS) == (
        "a-local-table"
    )
    assert template.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]}, IDS) == "b"


def test_what_needs_aws_is_refused_not_guessed():
    with pytest.raises(template.UnresolvableError):
        template.resolve({"Fn::GetAtt": ["SessionsTable", "Arn"]}, IDS)
    with pytest.raises(template.UnresolvableError):
        template.resolve({"Ref": "SessionsApi"}, IDS)  # no physical id given


def test_the_environment_of_every_function_resolves():
    for function in template.functions():
        environment = template.resolve_environment(function.environment, IDS)
        assert environment["SESSIONS_TABLE"] == "local-table"
        assert environment["POWERTOOLS_SERVICE_NAME"] == "signalwire-sessions"
        assert all(isinstance(value, str) for value in environment.values())


def test_each_function_has_its_timeout_and_memory_from_the_template():
    """The function's own Timeout / MemorySize, else the Globals' (the local API's context
    and the layer's time budget read them)."""
    document = template.load()
    defaults = document["Globals"]["Function"]
    for function in template.functions(http_only=False):
        props = document["Resources"][function.logical_id]["Properties"]
        assert function.timeout_secs == props.get("Timeout", defaults["Timeout"])
        assert function.memory_mb == props.get("MemorySize", defaults["MemorySize"])
    timeouts = {f.name: f.timeout_secs for f in template.functions(http_only=False)}
    assert timeouts["rotate_signing_key"] != timeouts["get_metadata"]  # one has its own


def test_for_each_loops_expand_as_the_language_extensions_do():
    section = {
        "Kept": {"Type": "AWS::SNS::Topic"},
        "Fn::ForEach::Outer": [
            "Name",
            ["Get", "Set"],
            {
                "Fn::ForEach::Inner": [
                    "Metric",
                    ["Errors", "Throttles"],
                    {
                        "${Name}${Metric}Alarm": {
                            "Properties": {
                                "MetricName": {"Ref": "Metric"},
                                "Value": {"Ref": {"Fn::Sub": "${Name}Function"}},
                                "Threshold": {"Ref": {"Fn::Sub": "Function${Metric}Threshold"}},
                                "Description": {"Fn::Sub": "${Name}: ${Metric} in ${AWS::Region}"},
                            }
                        }
                    },
                ]
            },
        ],
        "Fn::ForEach::Hosts": ["Host", ["a.b", "c-d"], {"Host&{Host}": {"Name": "${Host}"}}],
    }
    expanded = template.expand_for_each(section)
    assert list(expanded) == [
        "Kept",
        "GetErrorsAlarm",
        "GetThrottlesAlarm",
        "SetErrorsAlarm",
        "SetThrottlesAlarm",
        "Hostab",
        "Hostcd",
    ]
    assert expanded["SetThrottlesAlarm"]["Properties"] == {
        "MetricName": "Throttles",
        "Value": {"Ref": "SetFunction"},
        "Threshold": {"Ref": "FunctionThrottlesThreshold"},
        "Description": {"Fn::Sub": "Set: Throttles in ${AWS::Region}"},
    }
    assert expanded["Hostcd"] == {"Name": "c-d"}


def test_for_each_refuses_what_it_cannot_expand_alone():
    with pytest.raises(template.UnresolvableError):
        template.expand_for_each({"Fn::ForEach::X": ["I", {"Ref": "Names"}, {"R${I}": {}}]})
    with pytest.raises(ValueError, match="twice"):
        template.expand_for_each({"Fn::ForEach::X": ["I", ["a", "a"], {"R${I}": {}}]})
