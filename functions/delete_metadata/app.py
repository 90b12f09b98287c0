"""DELETE /sessions/{session_id}/metadata: deleted is true when a live session existed.
DELETE /sessions/{session_id}: the session is over: its metadata goes and, with
TOKEN_REVOCATION, its tokens are refused from now on."""

from typing import Any

from session_manager import SessionManager
from session_manager.http import Request, endpoint
from session_manager.telemetry import count

METADATA_ROUTE = "/sessions/{session_id}/metadata"
SESSION_ROUTE = "/sessions/{session_id}"

manager = SessionManager.from_env()


@endpoint("DeleteMetadata", routes=[("DELETE", METADATA_ROUTE), ("DELETE", SESSION_ROUTE)])
def handler(request: Request) -> tuple[int, dict[str, Any]]:
    session_id = request.session_id()
    if request.route == SESSION_ROUTE:
        # DeleteMetadata counts the function's requests; this counts the calls ended.
        count("EndSession")
        return 200, {"session_id": session_id, "ended": manager.end_session(session_id)}
    return 200, {"session_id": session_id, "deleted": manager.delete_session_metadata(session_id)}
