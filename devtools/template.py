"""template.yaml as data: the one source of truth for the table, the secret and the routes.

Tests, the local API and the benchmarks read the table's key, its TTL attribute, the
functions and their routes from here, so none of them can drift from what is deployed.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
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
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
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
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in load()["Resources"].items()
        if resource["Type"] == kind
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
            )
        )
    return found


def parameter_defaults() -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in load().get("Parameters", {}).items()}


def resolve_environment(
    environment: dict[str, Any], physical_ids: dict[str, str]
) -> dict[str, str]:
    """Environment values with !Ref resolved: parameters to their defaults, resources to
    the physical ids given (the local table's name, the local secret's name)."""
    defaults = parameter_defaults()
    resolved = {}
    for name, value in environment.items():
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            value = physical_ids[ref] if ref in physical_ids else defaults[ref]
        resolved[name] = str(value)
    return resolved


def load_handler(function: Function, *, namespace: str = "lambda") -> Any:
    """Import a function's module by path, as Lambda does, under a name of its own (every
    function's module is called app.py) and return its handler.

    The module is imported once per `namespace` and reused: another namespace gives a fresh
    import (a new cold start, with the environment of that moment), as the local API needs
    for each server it starts."""
    for layer in layer_dirs():
        if str(layer) not in sys.path:
            sys.path.insert(0, str(layer))
    module_name, attribute = function.handler.rsplit(".", 1)
    unique = f"{namespace}_{function.name}_{module_name}"
    module: ModuleType | None = sys.modules.get(unique)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            unique, function.code_dir / f"{module_name}.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[unique]
            raise
    return getattr(module, attribute)
