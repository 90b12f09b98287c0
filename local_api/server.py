"""The whole local API in this process: environment, backend, handlers, HTTP server.

    with LocalApi(port=0) as api:      # port 0: any free port
        urllib.request.urlopen(api.url + "/sessions/s1/metadata")

What `make serve` runs (through local_api/__main__.py) and what the HTTP tests start.
The environment and moto are process-wide, so one LocalApi runs at a time per process;
`close()` puts the environment back as it found it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import yaml

from devtools import lambda_runtime, template

from .backend import LocalAws, aws_defaults
from .gateway import Binding, Gateway, GatewayServer, RouteTable

log = logging.getLogger("local_api.server")

DEFAULT_PORT = 3000
OPENAPI = template.ROOT / "docs" / "openapi.yaml"
OPENAPI_PATH = "/openapi.json"  # where the local API serves the document
_running = threading.Lock()
_instances = itertools.count(1)


def physical_ids(functions: list[template.Function], environ: Mapping[str, str]) -> dict[str, str]:
    """The local names of the table and the secret: their logical ids, unless the shell
    sets a variable the template points at them (SESSIONS_TABLE: !Ref SessionsTable)."""
    ids = {template.table().logical_id: template.table().logical_id}
    ids[template.secret_logical_id()] = template.secret_logical_id()
    for function in functions:
        for name, value in function.environment.items():
            if isinstance(value, dict) and value.get("Ref") in ids and environ.get(name):
                ids[value["Ref"]] = environ[name]
    return ids


def openapi_document(url: str) -> dict[str, Any]:
    """docs/openapi.yaml as the local API at `url` answers it: `url` its only server (the
    port is PORT's), and no security requirement, since the local API takes plain requests
    where the deployed one needs IAM or a JWT."""
    with open(OPENAPI, encoding="utf-8") as stream:
        document: dict[str, Any] = yaml.safe_load(stream)
    document["servers"] = [{"url": url, "description": "make serve"}]
    document["security"] = []
    return document


def openapi_json(url: str) -> bytes:
    """The local document as JSON, the form OpenAPI tools fetch."""
    return json.dumps(openapi_document(url), indent=2).encode()


class LocalApi:
    """Start with `start()` or `with`; `url`, `bindings` and `backend` describe it."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        signing_key: str | None = None,
        metrics: bool = False,
    ) -> None:
        self.port = port
        self.signing_key = signing_key
        self.metrics = metrics
        self.functions = template.functions()
        self.routes = RouteTable(self.functions)
        self.overrides: dict[str, str] = {}  # template variables the shell sets instead
        self.backend: LocalAws | None = None
        self.server: GatewayServer | None = None
        self._namespace = f"local_api{next(_instances)}"
        self._saved_environ: dict[str, str | None] = {}
        self._owns_lock = False

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the local API is not running")
        return self.server.url

    @property
    def bindings(self) -> tuple[Binding, ...]:
        return self.routes.bindings

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.close()

    def start(self) -> LocalApi:
        if not _running.acquire(blocking=False):
            raise RuntimeError("a LocalApi is already running in this process")
        self._owns_lock = True
        try:
            ids = physical_ids(self.functions, os.environ)
            environments = self._environments(ids)
            shared: dict[str, str] = aws_defaults(os.environ)
            for environment in environments.values():
                shared.update(environment)
            self._set_environ(shared)
            self.backend = LocalAws(
                ids[template.table().logical_id],
                ids[template.secret_logical_id()],
                signing_key=self.signing_key,
            ).start()
            handlers = {
                function.logical_id: self._load(function, environments[function.logical_id])
                for function in self.functions
            }
            gateway = Gateway(self.routes, handlers)
            self.server = GatewayServer(gateway, self.port)  # bound: its URL is known
            gateway.documents = {OPENAPI_PATH: openapi_json(self.server.url)}
            self.server.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop serving, then the backend; put the environment back. Safe to call twice."""
        if self.server is not None:
            server, self.server = self.server, None
            server.stop()
        if self.backend is not None:
            backend, self.backend = self.backend, None
            backend.stop()
        lambda_runtime.unload(self._namespace)
        self._set_environ({})
        if self._owns_lock:
            self._owns_lock = False
            _running.release()

    def _environments(self, ids: dict[str, str]) -> dict[str, dict[str, str]]:
        """Each function's environment: the template's, with !Ref resolved to the local
        names; a variable the shell sets wins (TOKEN_EXPIRY_SECS=5 make serve), except the
        ones that keep the local API local and quiet."""
        forced = {"POWERTOOLS_TRACE_DISABLED": "true"}  # no X-Ray daemon here
        if self.metrics:
            forced["POWERTOOLS_METRICS_DISABLED"] = "false"
        elif "POWERTOOLS_METRICS_DISABLED" not in os.environ:
            # One EMF JSON line per request, for CloudWatch to read: noise on a console.
            forced["POWERTOOLS_METRICS_DISABLED"] = "true"
        environments = {}
        for function in self.functions:
            environment = template.resolve_environment(function.environment, ids)
            for name in environment:
                if name in os.environ and name not in forced:
                    environment[name] = os.environ[name]
                    self.overrides[name] = os.environ[name]
            environments[function.logical_id] = {**environment, **forced}
        values: dict[str, set[str]] = {}
        for environment in environments.values():
            for name, value in environment.items():
                values.setdefault(name, set()).add(value)
        for name, seen in sorted(values.items()):
            if len(seen) > 1:
                # One process, one environment: each function sees its own value while it
                # is imported (module-level configuration), the last one's afterwards.
                log.warning("%s differs between functions: %s", name, sorted(seen))
        return environments

    def _load(self, function: template.Function, environment: dict[str, str]) -> Any:
        """Import the function (its cold start) with its own environment in place."""
        previous = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        try:
            return lambda_runtime.load_handler(function, namespace=self._namespace)
        finally:
            _restore(previous)

    def _set_environ(self, values: dict[str, str]) -> None:
        """Make `values` the variables this API set (undoing the previous set first)."""
        _restore(self._saved_environ)
        self._saved_environ = {name: os.environ.get(name) for name in values}
        os.environ.update(values)


def _restore(previous: Mapping[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
