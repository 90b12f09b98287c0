"""Real misbehaving AWS endpoints on 127.0.0.1, for the deadline and fault tests.

- `HungEndpoint`: accepts TCP connections and never answers a byte, as a wedged load
  balancer or a stalled emulator does; botocore meets its read timeout on every attempt.
- `unreachable_url()`: a port nothing listens on; each connect is refused at once.

Point AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SECRETS_MANAGER at one before a client
is made. moto's mock lets requests to such non-AWS hosts through to the network.
"""

from __future__ import annotations

import socket
import threading


class HungEndpoint:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()
        return f"http://{host}:{port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._held.append(connection)  # held open, never read, never answered

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self._listener.close()
        for connection in self._held:
            connection.close()


def unreachable_url() -> str:
    """A loopback port that was free a moment ago: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host, port = probe.getsockname()
    return f"http://{host}:{port}"
