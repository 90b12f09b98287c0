"""DELETE /sessions/{session_id}/metadata: deleted is true when a live session existed.
DELETE /sessions/{session_id}: the session is over: its metadata is deleted and, with
TOKEN_REVOCATION, its tokens are refused from now on (see SessionManager.end_session).
"""

import re
from typing import Any

from session_manager import SessionManager
from session_manager.http import Request, endpoint

manager = SessionManager.from_env()

# Both routes carry the same path parameter, so the path tells them apart: the metadata
# route ends in /metadata after the session id. A session id never holds '/', so
# DELETE /sessions/metadata (the session named "metadata") is not mistaken for it.
_METADATA_PATH = re.compile(r".*/sessions/[^/]+/metadata/?")


@endpoint("DeleteMetadata", methods=("DELETE",))
def delete_metadata(request: Request) -> tuple[int, dict]:
    session_id = request.session_id()
    return 200, {"session_id": session_id, "deleted": manager.delete_session_metadata(session_id)}


@endpoint("EndSession", methods=("DELETE",))
def end_session(request: Request) -> tuple[int, dict]:
    session_id = request.session_id()
    return 200, {"session_id": session_id, "ended": manager.end_session(session_id)}


def _path(event: Any) -> str:
    """The called path in any event shape: HTTP API (rawPath), REST API and ALB (path)."""
    if not isinstance(event, dict):
        return ""
    path = event.get("rawPath", event.get("path"))
    return path if isinstance(path, str) else ""


def handler(event: Any, context: Any) -> dict:
    is_metadata = _path(event) == "" or _METADATA_PATH.fullmatch(_path(event))
    return (delete_metadata if is_metadata else end_session)(event, context)
