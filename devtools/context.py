"""A Lambda context object, as the runtime passes to a handler, for local invocations."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    """`remaining_ms`: the time left when the invocation starts (template.yaml's function
    Timeout, 10 s, unless a caller says otherwise); it runs down as a real one does."""

    function_name: str = "local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    remaining_ms: int = 10_000
    _started: float = field(default_factory=time.monotonic, init=False, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = (time.monotonic() - self._started) * 1000
        return max(0, int(self.remaining_ms - elapsed_ms))
