"""The sandbox's listening socket: a threading HTTP server that stops at once, closing the
connections it has open, and binds without a reverse DNS lookup.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from socketserver import BaseRequestHandler
from typing import Any

from pfsync.sandbox.api import Api


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server that can close its open connections when it stops."""

    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # the default 5 resets bursts of parallel clients
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self, host: str, port: int, api: Api, handler: type[BaseRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # serve_forever() notices shutdown() only every poll interval; this pair wakes it at once.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stop_requested = False
        try:
            super().__init__((host, port), handler)
        except BaseException:
            self._close_wakeup()
            raise

    def serve(self) -> None:
        """Accept connections until `wake_and_stop()`; each is served in its own thread."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stop_requested:
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stop_requested:
                        self.handle_request()  # the socket is readable: returns promptly
                self.service_actions()

    def wake_and_stop(self) -> None:
        """Make `serve()` return as soon as it has finished accepting."""
        self._stop_requested = True
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")

    def server_close(self) -> None:
        """Close the listening socket and wait for the handler threads."""
        super().server_close()
        self._close_wakeup()

    def _close_wakeup(self) -> None:
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup, which can take seconds."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a closed connection."""
        with self._connections_lock:
            self._connections.discard(connection)

    def open_connections(self) -> int:
        """How many client connections are open."""
        with self._connections_lock:
            return len(self._connections)

    def close_connections(self) -> None:
        """Shut down every open connection, waking handlers blocked on reads."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
