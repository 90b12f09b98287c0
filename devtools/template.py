"""template.yaml as data: the one source of truth for the table, the secret and the routes.

Tests, the local API and the benchmarks read the table's key, its TTL attribute, the
functions and their routes from here, so none of them can drift from what is deployed.
The template's intrinsic functions (Ref, Fn::If, Fn::Sub...) are resolved here as
CloudFormation would, with the parameters' defaults: see `resolve`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short tags (!Ref, !GetAtt, !Sub...)."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}")
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the template: /sessions/{session_id}/metadata


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str  # the folder under functions/
    code_dir: Path
    handler: str  # module.function
    routes: tuple[Route, ...]
    environment: dict[str, Any] = field(default_factory=dict)  # unresolved template values
    timeout_secs: int = 3  # Timeout: the function's own, else Globals', else Lambda's 3 s
    memory_mb: int = 128  # MemorySize, likewise


@dataclass(frozen=True)
class Table:
    logical_id: str
    partition_key: str
    ttl_attribute: str
    properties: dict[str, Any]

    def create_table_kwargs(self, table_name: str) -> dict[str, Any]:
        """Arguments for DynamoDB CreateTable, taken from the template's properties."""
        props = self.properties
        return {
            "TableName": table_name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }


@cache
def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as CloudFormation sees it once AWS::LanguageExtensions has expanded its
    Fn::ForEach loops (every other intrinsic function is left for `resolve`)."""
    with open(path, encoding="utf-8") as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    for section in ("Conditions", "Resources", "Outputs"):
        if section in document:
            document[section] = expand_for_each(document[section])
    return document


_FOR_EACH = "Fn::ForEach::"


def expand_for_each(section: dict[str, Any]) -> dict[str, Any]:
    """A section with each `Fn::ForEach::Name: [Identifier, [values], {OutputKey: value}]`
    replaced by one copy of its fragment per value, ${Identifier}, &{Identifier} and
    `Ref: Identifier` substituted (loops nest). Only a literal list of values: a collection
    from a parameter would need the deployment's values."""
    expanded: dict[str, Any] = {}
    for key, value in section.items():
        if not key.startswith(_FOR_EACH):
            expanded[key] = value
            continue
        identifier, collection, fragment = value
        if not isinstance(collection, list):
            raise UnresolvableError(f"{key}: a collection other than a literal list")
        for item in collection:
            copy = _substitute(fragment, identifier, str(item))
            for name, output in expand_for_each(copy).items():
                if name in expanded:
                    raise ValueError(f"{key} makes {name} twice")
                expanded[name] = output
    return expanded


def _substitute(node: Any, identifier: str, value: str) -> Any:
    if isinstance(node, str):
        alphanumeric = re.sub(r"[^A-Za-z0-9]", "", value)
        return node.replace(f"${{{identifier}}}", value).replace(f"&{{{identifier}}}", alphanumeric)
    if isinstance(node, list):
        return [_substitute(item, identifier, value) for item in node]
    if isinstance(node, dict):
        if node == {"Ref": identifier}:
            return value
        substituted = {
            _substitute(key, identifier, value): _substitute(item, identifier, value)
            for key, item in node.items()
        }
        # `Ref: !Sub Name${Identifier}` (the transform takes a function inside Ref): once
        # nothing is left to substitute, the plain Ref it stands for.
        target = substituted.get("Ref")
        if len(substituted) == 1 and isinstance(target, dict) and set(target) == {"Fn::Sub"}:
            text = target["Fn::Sub"]
            if isinstance(text, str) and "${" not in text:
                return {"Ref": text}
        return substituted
    return node


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in load()["Resources"].items()
        if isinstance(resource, dict) and resource.get("Type") == kind
    }


def table() -> Table:
    ((logical_id, resource),) = resources("AWS::DynamoDB::Table").items()
    props = resource["Properties"]
    (hash_key,) = [k["AttributeName"] for k in props["KeySchema"] if k["KeyType"] == "HASH"]
    return Table(
        logical_id=logical_id,
        partition_key=hash_key,
        ttl_attribute=props["TimeToLiveSpecification"]["AttributeName"],
        properties=props,
    )


def secret_logical_id() -> str:
    ((logical_id, _),) = resources("AWS::SecretsManager::Secret").items()
    return logical_id


def layer_dirs() -> list[Path]:
    """Each layer's ContentUri: what the Lambda runtime puts on sys.path."""
    return [
        ROOT / resource["Properties"]["ContentUri"]
        for resource in resources("AWS::Serverless::LayerVersion").values()
    ]


def functions(*, http_only: bool = True) -> list[Function]:
    """The functions with HttpApi routes (what the tests, the local API and the benchmarks
    serve); with http_only=False, every function (rotate_signing_key has no route)."""
    glob = load().get("Globals", {}).get("Function", {})
    found = []
    for logical_id, resource in resources("AWS::Serverless::Function").items():
        props = resource["Properties"]
        code_dir = ROOT / props["CodeUri"]
        environment = {
            **glob.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        routes = tuple(
            Route(event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for event in props.get("Events", {}).values()
            if event["Type"] == "HttpApi"
        )
        if http_only and not routes:
            continue
        found.append(
            Function(
                logical_id=logical_id,
                name=code_dir.name,
                code_dir=code_dir,
                handler=props.get("Handler", glob.get("Handler", "app.handler")),
                routes=routes,
                environment=environment,
                timeout_secs=int(props.get("Timeout", glob.get("Timeout", 3))),
                memory_mb=int(props.get("MemorySize", glob.get("MemorySize", 128))),
            )
        )
    return found


def parameter_defaults() -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in load().get("Parameters", {}).items()}


# What the pseudo parameters stand for outside AWS. The stack name is the one the README
# deploys with; it is also the `service` dimension of the metrics (POWERTOOLS_SERVICE_NAME).
PSEUDO_PARAMETERS: dict[str, Any] = {
    "AWS::StackName": "signalwire-sessions",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_NO_VALUE = object()  # Ref AWS::NoValue: the property is left out


class UnresolvableError(ValueError):
    """An intrinsic function this reader cannot resolve without AWS (Fn::GetAtt...)."""


def _parameter_value(name: str, parameters: dict[str, Any]) -> Any:
    value = parameters[name]
    spec = load().get("Parameters", {}).get(name, {})
    if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
        return value.split(",")
    return value


def resolve(
    value: Any, physical_ids: dict[str, str], parameters: dict[str, Any] | None = None
) -> Any:
    """A template value with its intrinsic functions resolved as CloudFormation would:
    Ref (parameters, the pseudo parameters, the resources given in `physical_ids`),
    Fn::If on the template's Conditions, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, and
    the condition functions. Parameters take `parameters`, else their defaults."""
    values = {**PSEUDO_PARAMETERS, **parameter_defaults(), **(parameters or {})}

    def condition(name: str) -> bool:
        return bool(walk(load().get("Conditions", {})[name]))

    def sub(text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is written as ${Literal}
            if name in variables:
                return str(variables[name])
            return str(walk({"Ref": name}))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in map(walk, node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                if argument == "AWS::NoValue":
                    return _NO_VALUE
                if argument in physical_ids:
                    return physical_ids[argument]
                if argument in values:
                    return _parameter_value(argument, values)
                raise UnresolvableError(f"Ref {argument}: not a parameter nor a given resource")
            if key == "Condition":
                return condition(argument)
            if key == "Fn::If":
                name, if_true, if_false = argument
                return walk(if_true if condition(name) else if_false)
            if key == "Fn::Equals":
                first, second = walk(argument)
                return str(first) == str(second)
            if key == "Fn::Not":
                (operand,) = walk(argument)
                return not operand
            if key == "Fn::And":
                return all(walk(argument))
            if key == "Fn::Or":
                return any(walk(argument))
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    return sub(argument, {})
                text, variables = argument
                return sub(text, walk(variables))
            if key == "Fn::Join":
                separator, items = walk(argument)
                return separator.join(map(str, items))
            if key == "Fn::Select":
                index, items = walk(argument)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = walk(argument)
                return text.split(separator)
            if key.startswith("Fn::"):
                raise UnresolvableError(f"{key} cannot be resolved outside AWS")
        resolved = {name: walk(item) for name, item in node.items()}
        return {name: item for name, item in resolved.items() if item is not _NO_VALUE}

    return walk(value)


def resolve_environment(
    environment: dict[str, Any],
    physical_ids: dict[str, str],
    parameters: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment values with their intrinsic functions resolved (see `resolve`): resources
    to the physical ids given (the local table's name, the local secret's name)."""
    resolved = resolve(environment, physical_ids, parameters)
    return {name: str(value) for name, value in resolved.items()}
