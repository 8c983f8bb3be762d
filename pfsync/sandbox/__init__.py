"""A local, faithful Pocketflows create-trigger API with fault injection.

In-process use (plan/apply --sandbox, end-to-end tests, benchmarks):

    from pfsync.sandbox import Sandbox

    with Sandbox(latency_ms=50, idempotency_keys=True) as sandbox:   # serves in a thread
        sandbox.url                       # e.g. "http://127.0.0.1:41234"
        sandbox.username, sandbox.password  # Basic auth, "sandbox"/"sandbox" by default
        sandbox.environment()             # PFSYNC_API_URL/USERNAME/PASSWORD for a pfsync process
        sandbox.script("lose-response", "500", "ok")  # outcomes of the next create requests
        sandbox.triggers("biz_123")       # created triggers (all businesses without argument)
        sandbox.requests()                # every request received, oldest first

`Sandbox(...)` takes the options of `pfsync sandbox` as keywords: host ("127.0.0.1"), port (0 picks
a free one), username, password, data_file (None keeps triggers in memory only),
idempotency_keys, latency_ms, rate_limit (requests per second), fail_rate, lose_response_rate,
seed, slow_seconds (how long a scripted `slow` answer waits; 30) and retry_after_seconds (the
`Retry-After` of a scripted `429` or `503-retry-after`; 1). `start()` returns the
sandbox; `stop()` closes every connection and waits for its threads. A Sandbox runs once.
Outcome names are listed in `pfsync.sandbox.faults`, endpoints in `pfsync.sandbox.server`.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any

from pfsync.errors import SandboxDataError
from pfsync.sandbox.api import Api
from pfsync.sandbox.faults import Faults
from pfsync.sandbox.listener import SandboxServer
from pfsync.sandbox.server import Handler
from pfsync.sandbox.store import RequestLog, Store

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USERNAME", "Sandbox", "SandboxDataError"]

DEFAULT_USERNAME = "sandbox"
DEFAULT_PASSWORD = "sandbox"


class Sandbox:
    """A sandbox API server running in a background thread of this process."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        data_file: str | os.PathLike[str] | None = None,
        idempotency_keys: bool = False,
        latency_ms: float = 0,
        rate_limit: float | None = None,
        fail_rate: float = 0.0,
        lose_response_rate: float = 0.0,
        seed: int | None = None,
        slow_seconds: float = 30.0,
        retry_after_seconds: int = 1,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.username = username
        self.password = password
        self.store = Store(data_file)
        self.faults = Faults(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            fail_rate=fail_rate,
            lose_response_rate=lose_response_rate,
            seed=seed,
            retry_after_seconds=retry_after_seconds,
        )
        self.request_log = RequestLog()
        self._api = Api(
            username=username,
            password=password,
            idempotency_keys=idempotency_keys,
            store=self.store,
            faults=self.faults,
            request_log=self.request_log,
            slow_seconds=slow_seconds,
        )
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"<Sandbox {where} user={self.username!r}>"

    def start(self) -> Sandbox:
        """Listen and serve in a background thread; raises OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError("this sandbox was already started")
        from pfsync.schemas import REQUEST, check

        # Build the check every create goes through now, not during the first request.
        # jsonschema, which only words a refused body's violations, is imported when one comes
        # (a tenth of a second that an `apply --sandbox` with valid manifests never spends).
        check(REQUEST)
        self._server = SandboxServer(self.host, self.requested_port, self._api, Handler)
        self._thread = threading.Thread(
            target=self._server.serve,
            name=f"pfsync-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The port actually listened on."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:41234`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving, close open connections and wait for the handler threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None or self._api.stopping.is_set():
            return
        self._api.stopping.set()
        server.wake_and_stop()
        thread.join()
        server.close_connections()
        server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """The environment variables that point a pfsync process at this sandbox."""
        return {
            "PFSYNC_API_URL": self.url,
            "PFSYNC_USERNAME": self.username,
            "PFSYNC_PASSWORD": self.password,
        }

    def script(self, *outcomes: str) -> list[str]:
        """Queue outcomes for the next create requests (see `faults`); returns the queue."""
        return self.faults.script(outcomes)

    def triggers(self, business: str | None = None) -> list[dict[str, Any]]:
        """Created triggers, oldest first: of one business, or of all."""
        return self.store.triggers(business)

    def open_connections(self) -> int:
        """How many client connections are open: 0 once every request received is answered
        and its client gone (a killed client's requests still in progress finish first)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.open_connections()

    def requests(self) -> list[dict[str, Any]]:
        """Every request received except `/__sandbox/` ones, oldest first."""
        return self.request_log.entries()
