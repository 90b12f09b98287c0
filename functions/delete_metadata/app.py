"""DELETE /sessions/{session_id}/metadata: deleted is true when a live session existed."""

from session_manager import SessionManager
from session_manager.http import Request, endpoint

manager = SessionManager.from_env()


@endpoint("DeleteMetadata", routes=[("DELETE", "/sessions/{session_id}/metadata")])
def handler(request: Request) -> tuple[int, dict]:
    session_id = request.session_id()
    return 200, {"session_id": session_id, "deleted": manager.delete_session_metadata(session_id)}
