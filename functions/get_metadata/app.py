"""GET /sessions/{session_id}/metadata: the session's metadata, {} when unknown or expired."""

from typing import Any

from session_manager import SessionManager
from session_manager.http import Request, endpoint

# Built during INIT and reused while the instance is warm; no AWS call happens here.
manager = SessionManager.from_env()


@endpoint("GetMetadata", routes=[("GET", "/sessions/{session_id}/metadata")])
def handler(request: Request) -> tuple[int, dict[str, Any]]:
    session_id = request.session_id()
    return 200, {"session_id": session_id, "metadata": manager.get_session_metadata(session_id)}
