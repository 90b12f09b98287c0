"""POST /tokens/validate: {"valid": true}, or {"valid": false, "reason": code}.

A refused token is an answer, not an error: 200 either way. A request that cannot be read
(no JSON, missing fields, a call id or function name of the wrong shape) is a 400.
"""

from typing import Any

from session_manager import SessionManager
from session_manager.http import Request, endpoint
from session_manager.telemetry import count_token_rejection

manager = SessionManager.from_env()


@endpoint("ValidateToken", routes=[("POST", "/tokens/validate")])
def handler(request: Request) -> tuple[int, dict[str, Any]]:
    body = request.json_object()
    token = request.string_field(body, "token")
    call_id = request.call_id(body)
    function_name = request.function_name(body)
    reason = manager.check_token(call_id, function_name, token)
    if reason:
        count_token_rejection(reason)
        return 200, {"valid": False, "reason": reason}
    return 200, {"valid": True}
