"""`make agent`: examples/agent beside the local API, in one process, on 127.0.0.1.

    python -m devtools.local_agent     # PORT (3000): the API; AGENT_PORT (3001): the agent

The local API (`make serve`) starts first, with its table and secret in the embedded moto;
then the agent's app.py is imported as Lambda would (its cold start) with the environment
examples/agent/template.yaml gives it, pointed at that same table and secret. So a token
the agent writes into a call's SWML validates at POST /tokens/validate, a token from
POST /sessions/{id}/tokens runs the agent's secure tool, and the metadata the tool keeps is
what GET /sessions/{id}/metadata returns. One process, because the embedded moto is
in-process: nothing outside it could reach the table.

The agent is served by the local API's own gateway: each request becomes the HTTP API
event (payload 2.0) the deployed agent's API would send. Ctrl-C or SIGTERM stops both.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from local_api.__main__ import (
    banner,
    block_stop_signals,
    cannot_listen,
    configure_logging,
    start_api,
    wait_for_stop,
)
from local_api.gateway import Gateway, GatewayServer, RouteTable
from local_api.server import DEFAULT_PORT, LocalApi

from . import lambda_runtime, template

EXAMPLE = template.ROOT / "examples" / "agent"
DEFAULT_AGENT_PORT = 3001
# The agent's basic auth here, when the shell sets none: the deployed agent takes them
# from its BasicAuthUser and BasicAuthPassword parameters (the password has no default).
LOCAL_AUTH = {"SWML_BASIC_AUTH_USER": "signalwire", "SWML_BASIC_AUTH_PASSWORD": "local-agent-pass"}
_NAMESPACE = "local_agent"


def agent_function() -> template.Function:
    """examples/agent/template.yaml's one function, as template.functions() reads the root's."""
    ((logical_id, resource),) = [
        (name, resource)
        for name, resource in template.load(EXAMPLE / "template.yaml")["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    props = resource["Properties"]
    return template.Function(
        logical_id=logical_id,
        name=EXAMPLE.name,
        code_dir=EXAMPLE / props["CodeUri"],
        handler=props["Handler"],
        routes=tuple(
            template.Route(event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for event in props["Events"].values()
            if event["Type"] == "HttpApi"
        ),
        environment=props["Environment"]["Variables"],
        timeout_secs=int(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
    )


def agent_environment(
    function: template.Function,
    table_name: str,
    secret_id: str,
    agent_url: str,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The agent's environment: its template's, with the stack parameters a deployment
    would pass (the local API's table and secret, the local basic auth) and its webhooks
    pointed at `agent_url`. A variable the shell sets wins, as with `make serve`."""
    parameters: dict[str, Any] = {
        name: spec.get("Default")
        for name, spec in template.load(EXAMPLE / "template.yaml")["Parameters"].items()
    }
    parameters.update(
        SessionsTableName=table_name,
        SigningSecretArn=secret_id,
        BasicAuthUser=LOCAL_AUTH["SWML_BASIC_AUTH_USER"],
        BasicAuthPassword=LOCAL_AUTH["SWML_BASIC_AUTH_PASSWORD"],
    )
    environment = {}
    for name, value in function.environment.items():
        if isinstance(value, dict):
            value = parameters[value["Ref"]]  # the template gives only !Ref parameters
        environment[name] = "" if value is None else str(value)
    # Deployed, app.py takes the webhooks' base URL from the API's domain in each event;
    # here that is the local agent's own URL.
    environment["SWML_PROXY_URL_BASE"] = agent_url
    for name in environment:
        if environ.get(name):
            environment[name] = environ[name]
    return environment


def with_auth(url: str, environment: Mapping[str, str]) -> str:
    """`url` with the agent's basic auth in it, as SignalWire is given the agent's URL."""
    parts = urlsplit(url)
    user = environment["SWML_BASIC_AUTH_USER"]
    password = environment["SWML_BASIC_AUTH_PASSWORD"]
    return parts._replace(netloc=f"{user}:{password}@{parts.netloc}").geturl()


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def agent_banner(url: str, table_name: str, secret_id: str) -> str:
    body = '{"call_id": "call-1"}'
    swml = shlex.join(["curl", "-s", "-X", "POST", url, "-H", "content-type: application/json"])
    swml += f" -d {shlex.quote(body)}"
    return "\n".join(
        [
            f"Agent (examples/agent/app.py) on {url}",
            f"  with the API's table {table_name} and secret {secret_id}",
            "",
            "Its SWML, with the order_status tool's web_hook_url and token:",
            f"  {swml}",
            "",
        ]
    )


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise SystemExit(f"error: {name} must be a port number, not {raw!r}")
    return int(raw)


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # no options: PORT and AGENT_PORT, as `make serve` takes PORT
    api_port = _port("PORT", DEFAULT_PORT)
    agent_port = _port("AGENT_PORT", DEFAULT_AGENT_PORT)
    configure_logging(quiet=False)
    block_stop_signals()
    function = agent_function()
    api = LocalApi(api_port, signing_key=os.environ.get("SIGNING_SECRET") or None)
    server: GatewayServer | None = None
    try:
        if not start_api(api):
            return 1
        assert api.backend is not None
        table_name, secret_id = api.backend.table_name, api.backend.secret_id
        try:
            server = GatewayServer(Gateway(RouteTable([function]), {}), agent_port)
        except OSError as error:
            print(cannot_listen(agent_port, error), file=sys.stderr)
            return 1
        environment = agent_environment(function, table_name, secret_id, server.url)
        with _environ(environment):
            handler = lambda_runtime.load_handler(function, namespace=_NAMESPACE)
            server.gateway.handlers = {function.logical_id: handler}
            server.start()
            url = with_auth(server.url + "/", environment)
            print(banner(api), flush=True)
            print(agent_banner(url, table_name, secret_id), flush=True)
            received = wait_for_stop()
            print(f"\n{received.name}: stopping...", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.stop()
        api.close()
        lambda_runtime.unload(_NAMESPACE)
    print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
