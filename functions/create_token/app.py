"""POST /sessions/{session_id}/tokens: a tool token for one function in this call."""

from typing import Any

from session_manager import SessionManager
from session_manager.http import Request, endpoint

manager = SessionManager.from_env()


@endpoint("CreateToken", routes=[("POST", "/sessions/{session_id}/tokens")])
def handler(request: Request) -> tuple[int, dict[str, Any]]:
    call_id = request.session_id()
    function_name = request.function_name(request.json_object())
    token, expires_at = manager.issue_token(function_name, call_id)
    return 201, {
        "token": token,
        "call_id": call_id,
        "function_name": function_name,
        "expires_at": expires_at,
    }
