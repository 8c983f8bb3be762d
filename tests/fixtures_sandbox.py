"""Fixtures that start an in-process sandbox (the local Pocketflows API) for tests.

    sandbox           a started `pfsync.sandbox.Sandbox` with default options; it offers
                      .url, .username, .password, .environment() (PFSYNC_* variables for a
                      pfsync subprocess), .script(*outcomes), .triggers(business=None),
                      .requests()
    make_sandbox      factory: make_sandbox(**Sandbox options) -> a started Sandbox, e.g.
                      make_sandbox(idempotency_keys=True, latency_ms=20, data_file=path)
    sandbox_client    an httpx.Client on `sandbox` with its Basic auth (closed after the test)
    http_client       a plain httpx.Client without auth or base URL (closed after the test)

Every sandbox started here is stopped after the test. `trigger_body()` gives a valid request.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pfsync.sandbox import Sandbox

MakeSandbox = Callable[..., Sandbox]


def trigger_body(name: str = "Welcome series", **fields: Any) -> dict[str, Any]:
    """A valid create-trigger request body, with `fields` added or replaced."""
    body: dict[str, Any] = {
        "name": name,
        "project_defined_event": "pde_signup",
        "steps": [{"type": "email", "email_template_id": "et_welcome_1"}],
    }
    body.update(fields)
    return body


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~30 ms per httpx.Client; loopback HTTP never uses it.
    return ssl.create_default_context()


def http_client(**options: Any) -> httpx.Client:
    """An httpx.Client that is cheap to create; close it (use `with`)."""
    options.setdefault("timeout", 10.0)
    options.setdefault("verify", _tls_context())
    return httpx.Client(**options)


def sandbox_client(sandbox: Sandbox, **options: Any) -> httpx.Client:
    """An httpx.Client for `sandbox` with its credentials; close it (use `with`)."""
    return http_client(base_url=sandbox.url, auth=(sandbox.username, sandbox.password), **options)


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    """Start sandboxes with custom options; all are stopped after the test."""
    started: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        sandbox = Sandbox(**options).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in reversed(started):
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    """A started sandbox with default options (user and password `sandbox`)."""
    return make_sandbox()


@pytest.fixture(name="sandbox_client")
def sandbox_client_fixture(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx.Client bound to the `sandbox` fixture, with its Basic auth."""
    with sandbox_client(sandbox) as client:
        yield client


@pytest.fixture(name="http_client")
def http_client_fixture() -> Iterator[httpx.Client]:
    """A plain httpx.Client (no auth, no base URL)."""
    with http_client() as client:
        yield client
