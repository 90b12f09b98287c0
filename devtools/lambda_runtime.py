"""A function's handler imported as the Lambda runtime imports it, outside Lambda.

The runtime puts each layer's ContentUri on sys.path and imports the function's module
from its CodeUri. Every function's module is called app.py, so here each is imported by
path under a name of its own (`<namespace>_<function>_app`): the functions never share a
module, and a new namespace is a new cold start. template.py only reads the template;
this is the one place that touches sys.path and sys.modules for the functions.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import template

DEFAULT_NAMESPACE = "lambda"


def load_handler(
    function: template.Function, *, namespace: str = DEFAULT_NAMESPACE
) -> Callable[..., Any]:
    """Import the function's module (its INIT, with the environment of this moment) and
    return its handler.

    The module is imported once per `namespace` and reused: another namespace gives a fresh
    import, as the local API needs for each server it starts; `unload` forgets one."""
    for layer in template.layer_dirs():
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
    handler: Callable[..., Any] = getattr(module, attribute)
    return handler


def unload(namespace: str) -> None:
    """Forget every module `load_handler` imported under `namespace`: the next load of a
    function there is a cold start again."""
    prefix = f"{namespace}_"
    for name in [name for name in sys.modules if name.startswith(prefix)]:
        del sys.modules[name]
