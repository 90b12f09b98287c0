"""template.yaml against the contract, issue 3's requirements and what the code expects.

The table's key, its TTL attribute and the routes are read from the template (through
devtools.template, as the tests, the local API and the benchmarks read them) and compared
with the layer's own constants, so the code and the deployment cannot drift apart. The
slow tests run the tools a user deploys with: sam validate --lint, cfn-lint, sam build.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools import template
from session_manager import keys, store

ROOT = template.ROOT
DOC = template.load()
RESOURCES: dict[str, dict[str, Any]] = DOC["Resources"]
GLOBAL_FUNCTION: dict[str, Any] = DOC.get("Globals", {}).get("Function", {})

# From the contract ("Layout", "Configuration", "HTTP API"): what callers rely on.
CONTRACT_ROUTES = {
    "get_metadata": {("GET", "/sessions/{session_id}/metadata")},
    "set_metadata": {
        ("PATCH", "/sessions/{session_id}/metadata"),
        ("PUT", "/sessions/{session_id}/metadata"),
    },
    "delete_metadata": {
        ("DELETE", "/sessions/{session_id}/metadata"),
        ("DELETE", "/sessions/{session_id}"),
    },
    "create_token": {("POST", "/sessions/{session_id}/tokens")},
    "validate_token": {("POST", "/tokens/validate")},
}
CONTRACT_DEFAULTS = {"TOKEN_EXPIRY_SECS": 900, "SESSION_TTL_SECS": 3600, "SECRET_CACHE_SECS": 300}
CONTRACT_VARIABLES = {
    "SESSIONS_TABLE",
    "SIGNING_SECRET_ID",
    "TOKEN_REVOCATION",
    "SINGLE_USE_TOKENS",
    *CONTRACT_DEFAULTS,
}
METADATA_FUNCTIONS = ["get_metadata", "set_metadata", "delete_metadata"]
TOKEN_FUNCTIONS = ["create_token", "validate_token"]

# Least privilege, by function: exactly what its code path calls.
TABLE_ACTIONS = {
    "get_metadata": {"dynamodb:GetItem"},
    # UpdateItem merges; PutItem replaces, and restarts an expired session; GetItem reads
    # back for a merge with more keys than one update expression can hold.
    "set_metadata": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    # PutItem: the revocation marker of DELETE /sessions/{id}, granted with TokenRevocation.
    "delete_metadata": {"dynamodb:DeleteItem", "dynamodb:PutItem"},
}


def the_one(kind: str) -> tuple[str, dict[str, Any]]:
    found = template.resources(kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource


FUNCTIONS = {function.name: function for function in template.functions()}
TABLE_ID, TABLE = the_one("AWS::DynamoDB::Table")
SECRET_ID, SECRET = the_one("AWS::SecretsManager::Secret")
LAYER_ID, LAYER = the_one("AWS::Serverless::LayerVersion")
API_ID, API = the_one("AWS::Serverless::HttpApi")


def props(name: str) -> dict[str, Any]:
    return RESOURCES[FUNCTIONS[name].logical_id]["Properties"]


def effective(name: str, key: str) -> Any:
    """A function's property as SAM applies it: its own, else the Globals'."""
    return props(name).get(key, GLOBAL_FUNCTION.get(key))


def statements(name: str, conditional: bool = True) -> list[dict[str, Any]]:
    """The function's inline policy statements; anything else (a managed policy, a SAM
    policy template) grants more than the code needs and fails here. A grant under
    `!If [mode, policy, !Ref AWS::NoValue]` (an optional mode) counts as if the mode were
    on, or is left out with conditional=False."""
    found = []
    for policy in props(name).get("Policies", []):
        if isinstance(policy, dict) and set(policy) == {"Fn::If"}:
            _mode, policy, otherwise = policy["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}, f"{name}: {otherwise!r}"
            if not conditional:
                continue
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, (
            f"{name}: only inline statements, not {policy!r}"
        )
        statement = policy["Statement"]
        found.extend(statement if isinstance(statement, list) else [statement])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(name: str) -> set[str]:
    return {action for s in statements(name) for action in as_list(s["Action"])}


def resources_of(name: str) -> list[Any]:
    return [resource for s in statements(name) for resource in as_list(s["Resource"])]


# -- the layer ------------------------------------------------------------------------------


def test_one_layer_for_python_3_13_on_arm64_built_by_its_makefile():
    properties = LAYER["Properties"]
    assert properties["ContentUri"] == "layers/session_manager"
    assert properties["CompatibleRuntimes"] == ["python3.13"]
    assert properties["CompatibleArchitectures"] == ["arm64"]
    # SAM's python3.13 builder needs a python3.13 on PATH; the Makefile does not.
    assert LAYER["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / properties["ContentUri"] / "Makefile").read_text(encoding="utf-8")
    assert f"build-{LAYER_ID}:" in makefile
    for option in ("--platform manylinux2014_aarch64", "--only-binary=:all:", "--target"):
        assert option in makefile
    assert "--python-version $(LAMBDA_PYTHON)" in makefile
    assert "LAMBDA_PYTHON := 3.13" in makefile


def test_the_layer_folder_holds_the_package_and_its_requirements():
    layer = ROOT / LAYER["Properties"]["ContentUri"]
    assert (layer / "session_manager" / "__init__.py").is_file()
    requirements = (layer / "requirements.txt").read_text(encoding="utf-8").lower()
    lines = [line.split("#")[0].strip() for line in requirements.splitlines()]
    names = {line.split("[")[0].split("<")[0].split(">")[0].split("=")[0] for line in lines}
    assert "aws-lambda-powertools" in names
    assert "boto3" not in names  # the runtime provides it


# -- the functions --------------------------------------------------------------------------


def test_the_five_functions_of_the_contract():
    assert set(FUNCTIONS) == set(CONTRACT_ROUTES)


@pytest.mark.parametrize("name", sorted(CONTRACT_ROUTES))
def test_each_function_is_its_folder_with_an_app_py_defining_handler(name):
    assert props(name)["CodeUri"] == f"functions/{name}"
    assert effective(name, "Handler") == "app.handler"
    app = ROOT / "functions" / name / "app.py"
    assert app.is_file()
    tree = ast.parse(app.read_text(encoding="utf-8"))
    top_level = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)
    } | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert "handler" in top_level


@pytest.mark.parametrize("name", sorted(CONTRACT_ROUTES))
def test_each_function_runs_python_3_13_on_arm64_with_the_layer(name):
    assert effective(name, "Runtime") == "python3.13"
    assert effective(name, "Architectures") == ["arm64"]
    assert {"Ref": LAYER_ID} in effective(name, "Layers")
    assert effective(name, "Tracing") == "Active"


# -- environment ----------------------------------------------------------------------------


def environment(name: str) -> dict[str, Any]:
    return FUNCTIONS[name].environment


@pytest.mark.parametrize("name", sorted(CONTRACT_ROUTES))
def test_each_function_gets_exactly_the_contracts_variables(name):
    variables = environment(name)
    ours = {v for v in variables if not v.startswith("POWERTOOLS_") and v != "LOG_LEVEL"}
    assert ours == CONTRACT_VARIABLES
    # Endpoint overrides are for local backends only; deployed, botocore finds AWS itself.
    assert not [v for v in variables if v.startswith("AWS_ENDPOINT_URL")]
    assert variables["SESSIONS_TABLE"] == {"Ref": TABLE_ID}
    assert variables["SIGNING_SECRET_ID"] == {"Ref": SECRET_ID}


def test_the_tunable_variables_default_to_the_contracts_defaults():
    resolved = template.resolve_environment(
        environment("get_metadata"), {TABLE_ID: "table", SECRET_ID: "secret"}
    )
    for variable, default in CONTRACT_DEFAULTS.items():
        assert int(resolved[variable]) == default, variable


@pytest.mark.parametrize("name", sorted(CONTRACT_ROUTES))
def test_powertools_is_configured(name):
    variables = environment(name)
    # Metrics refuse to flush without a namespace; the service names the logs.
    assert variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert variables["POWERTOOLS_SERVICE_NAME"]
    # The issue: X-Ray response capture off (a response can hold a token).
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


# -- the API --------------------------------------------------------------------------------


def test_the_routes_are_the_contracts():
    for name, function in FUNCTIONS.items():
        assert {(r.method, r.path) for r in function.routes} == CONTRACT_ROUTES[name], name


@pytest.mark.parametrize("name", sorted(CONTRACT_ROUTES))
def test_every_route_is_on_the_one_http_api_without_an_auth_override(name):
    routes = props(name)["Events"].values()
    assert routes
    for route in routes:
        assert route["Type"] == "HttpApi"
        # Without ApiId, SAM would make a second, implicit API without the IAM authorizer.
        assert route["Properties"]["ApiId"] == {"Ref": API_ID}
        assert "Auth" not in route["Properties"]


def test_the_api_requires_iam_by_default():
    """With the parameters' defaults; test_auth.py runs SAM itself on both modes."""
    auth = template.resolve(API["Properties"]["Auth"], {})
    assert auth == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}


def test_the_api_logs_access_and_throttles():
    properties = API["Properties"]
    logs = properties["AccessLogSettings"]
    (log_group,) = logs["DestinationArn"]["Fn::GetAtt"][:1]
    assert RESOURCES[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[log_group]["Properties"].get("RetentionInDays")
    assert "$context.requestId" in logs["Format"]
    throttling = properties["DefaultRouteSettings"]
    assert throttling["ThrottlingBurstLimit"] > 0
    assert throttling["ThrottlingRateLimit"] > 0


# -- the table ------------------------------------------------------------------------------


def test_the_table_key_and_ttl_are_what_the_code_uses():
    table = template.table()
    assert table.partition_key == store.PARTITION_KEY
    assert table.ttl_attribute == store.TTL_ATTRIBUTE


def test_the_table_is_on_demand_with_a_string_key_and_ttl():
    properties = TABLE["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": store.PARTITION_KEY, "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [
        {"AttributeName": store.PARTITION_KEY, "AttributeType": "S"}
    ]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": store.TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_the_table_has_point_in_time_recovery_and_encryption_at_rest():
    properties = TABLE["Properties"]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True


# -- the secret -----------------------------------------------------------------------------


def test_the_secret_is_generated_long_and_without_punctuation():
    properties = SECRET["Properties"]
    assert "SecretString" not in properties  # never a key in the template
    generated = properties["GenerateSecretString"]
    assert generated["PasswordLength"] >= max(64, keys.MIN_KEY_CHARS)
    assert generated["ExcludePunctuation"] is True
    # The SecretString must be the key itself, not JSON with the key in a field.
    assert "SecretStringTemplate" not in generated
    assert "GenerateStringKey" not in generated


# -- least privilege ------------------------------------------------------------------------


def test_no_function_has_a_role_of_its_own():
    """A Role would replace the Policies checked below."""
    assert "Role" not in GLOBAL_FUNCTION and "Policies" not in GLOBAL_FUNCTION
    for name in FUNCTIONS:
        assert "Role" not in props(name), name


@pytest.mark.parametrize("name", sorted(CONTRACT_ROUTES))
def test_no_wildcard_action_or_resource(name):
    assert statements(name), f"{name} has no policy of its own"
    for statement in statements(name):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action, (name, action)
        for resource in as_list(statement["Resource"]):
            assert "*" not in json.dumps(resource), (name, resource)


@pytest.mark.parametrize("name", METADATA_FUNCTIONS)
def test_metadata_functions_get_only_their_table_calls(name):
    assert actions(name) == TABLE_ACTIONS[name]
    assert not any(action.startswith("secretsmanager:") for action in actions(name))
    assert resources_of(name) == [{"Fn::GetAtt": [TABLE_ID, "Arn"]}] * len(statements(name))


@pytest.mark.parametrize("name", TOKEN_FUNCTIONS)
def test_token_functions_can_only_read_the_secret(name):
    """Unless a token lifecycle mode is on (tests/template/test_lifecycle_template.py)."""
    base = statements(name, conditional=False)
    assert {a for s in base for a in as_list(s["Action"])} == {"secretsmanager:GetSecretValue"}
    assert [r for s in base for r in as_list(s["Resource"])] == [{"Ref": SECRET_ID}] * len(base)


# -- logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_has_its_log_group_with_the_retention_parameter(name):
    """Left to Lambda, a function's log group is created on first use and never expires; the
    function names its group, so the group exists first (tests/template/test_deploy.py)."""
    logical_id = FUNCTIONS[name].logical_id
    group = props(name)["LoggingConfig"]["LogGroup"]["Ref"]
    properties = RESOURCES[group]["Properties"]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # The stack's own name, never the function's (Lambda's default group, and a cycle).
    name_template = properties["LogGroupName"]["Fn::Sub"]
    assert name_template.startswith("/aws/lambda/${AWS::StackName}/"), name_template
    assert logical_id not in name_template


# -- outputs --------------------------------------------------------------------------------


def test_outputs_give_the_api_url_the_table_name_and_the_secret_arn():
    outputs = DOC["Outputs"]
    assert "${" + API_ID + "}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["TableName"]["Value"] == {"Ref": TABLE_ID}
    assert outputs["SecretArn"]["Value"] == {"Ref": SECRET_ID}  # Ref of a secret is its ARN


# -- the tools ------------------------------------------------------------------------------


def tool(name: str) -> str:
    """The venv's own copy (a dev dependency), else one on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]'"
    return found


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        # The layer's Makefile runs `python3 -m pip`: the venv's first (any version will do).
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Nothing here needs AWS; should a tool try, it fails instead of reaching it.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    # As on a machine without an AWS profile: the commands the README gives must not need one.
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        env.pop(variable, None)
    return subprocess.run(  # noqa: S603 - our own tools, fixed arguments
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
def test_sam_validate_lint_is_clean():
    result = run(tool("sam"), "validate", "--lint", "--template", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_plain_sam_validate_runs_the_sam_transform_after_the_language_extensions():
    """Plain `sam validate`, as `sam build` suggests, runs SAM's translator: samconfig.toml
    turns the language extensions on (the Fn::If SAM cannot take, the Fn::ForEach alarms)
    and gives validation a region, so it needs no flag, profile or credentials."""
    result = run(tool("sam"), "validate", "--template", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_cfn_lint_is_clean():
    result = run(tool("cfn-lint"), "template.yaml")
    # cfn-lint exits non-zero for errors, warnings and informational findings alike.
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.slow
def test_sam_build_succeeds_without_docker(tmp_path):
    build = tmp_path / "build"
    # Plain `sam build`: samconfig.toml asks for the language extensions the alarms need.
    result = run(
        tool("sam"),
        "build",
        "--build-dir",
        str(build),
        "--template",
        "template.yaml",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--use-container" not in result.stdout  # built here, with pip, for arm64

    layer = build / LAYER_ID / "python"
    assert (layer / "session_manager" / "__init__.py").is_file()
    assert (layer / "aws_lambda_powertools").is_dir()
    # The runtime's own: a botocore in the layer would shadow the runtime's, under its boto3.
    assert not (layer / "boto3").exists()
    assert not (layer / "botocore").exists()
    # Wheels for Lambda, not for the Python that ran the build: no bytecode of its own (nor
    # any from a local checkout), no console scripts.
    assert not list(layer.rglob("__pycache__"))
    assert not (layer / "bin").exists()
    assert not [p for p in layer.rglob("*.so") if "x86_64" in p.name or "cpython-311" in p.name]
    for function in FUNCTIONS.values():
        assert (build / function.logical_id / "app.py").is_file(), function.name
    assert (build / "template.yaml").is_file()
