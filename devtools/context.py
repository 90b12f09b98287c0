"""A Lambda context object, as the runtime passes to a handler, for local invocations.

Imports nothing beyond the standard library at run time: bench/probe.py uses it inside
a Lambda-like interpreter that has no PyYAML.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .template import Function


@dataclass
class LambdaContext:
    """`remaining_ms`: the time left when the invocation starts; it runs down as a real
    one does. `for_function` takes it (and the memory) from the function's template.yaml
    settings; built by hand, a context has 10 s unless a caller says otherwise."""

    function_name: str = "local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    remaining_ms: int = 10_000
    _started: float = field(default_factory=time.monotonic, init=False, repr=False)

    @classmethod
    def for_function(cls, function: Function, name: str | None = None) -> LambdaContext:
        """A context as Lambda makes it for `function`: its Timeout and MemorySize from
        template.yaml (its own, else Globals'), under `name` (default: its folder's)."""
        name = name or function.name
        return cls(
            function_name=name,
            memory_limit_in_mb=function.memory_mb,
            log_group_name=f"/aws/lambda/{name}",
            remaining_ms=function.timeout_secs * 1000,
        )

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = (time.monotonic() - self._started) * 1000
        return max(0, int(self.remaining_ms - elapsed_ms))
