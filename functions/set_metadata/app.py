"""PATCH /sessions/{session_id}/metadata merges (null removes a key); PUT replaces."""

from typing import Any

from session_manager import SessionManager
from session_manager.http import Request, endpoint

manager = SessionManager.from_env()


@endpoint(
    "SetMetadata",
    routes=[
        ("PATCH", "/sessions/{session_id}/metadata"),
        ("PUT", "/sessions/{session_id}/metadata"),
    ],
)
def handler(request: Request) -> tuple[int, dict[str, Any]]:
    session_id = request.session_id()
    body = request.json_object()
    if request.method == "PUT":
        metadata = manager.replace_session_metadata(session_id, body)
    else:
        metadata = manager.set_session_metadata(session_id, body)
    return 200, {"session_id": session_id, "metadata": metadata}
