"""`pfsync sandbox`: serve a local Pocketflows API with fault injection (§10)."""

from __future__ import annotations

import ipaddress
import signal
import sys
from types import FrameType

import click


class _StopSignal(BaseException):
    """SIGINT or SIGTERM arrived; unwinds the wait so the server stops cleanly."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopSignal(signum)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option("--username", default="sandbox", show_default=True, help="Basic auth username.")
@click.option(
    "--password", default="sandbox", show_default=True, help="Basic auth password (never printed)."
)
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False),
    help="Keep created triggers in this JSON file across restarts (default: memory only).",
)
@click.option(
    "--idempotency-keys",
    is_flag=True,
    help="Honour the Idempotency-Key header (the documented API does not; ignored by default).",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0,
    help="Answer each create request no sooner than this.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second (token bucket); beyond it, 429 with Retry-After.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Fraction of creates answered 500 before storing anything.",
)
@click.option(
    "--lose-response-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Fraction of creates stored, then the connection closed without a response.",
)
@click.option("--seed", type=int, help="Seed the random faults for a reproducible run.")
def sandbox(
    host: str,
    port: int,
    username: str,
    password: str,
    data_file: str | None,
    idempotency_keys: bool,
    latency_ms: float,
    rate_limit: float | None,
    fail_rate: float,
    lose_response_rate: float,
    seed: int | None,
) -> int:
    """Serve a local Pocketflows create-trigger API, for trying pfsync and for tests.

    The first line printed is the base URL; SIGINT or SIGTERM stops it (exit 0).
    Authenticate with HTTP Basic, by default username `sandbox` and password `sandbox`.

    \b
    Sandbox-only endpoints (not part of Pocketflows; no auth, no faults):
      GET  /businesses/ID/triggers   the triggers created for business ID
      GET  /__sandbox/requests       every request received (never its credentials)
      POST /__sandbox/faults         script the next create outcomes, e.g.
                                     ["lose-response", "500", "429", "ok"]
    Outcomes: ok, ok-no-id, lose-response, slow, drop, 503-retry-after, and any 4xx/5xx
    status such as 500, 502, 503, 504, 409, 401, 403, 422, 429.

    \b
    Examples:
      pfsync sandbox --port 0
      PFSYNC_API_URL=http://127.0.0.1:8787 PFSYNC_USERNAME=sandbox \\
        PFSYNC_PASSWORD=sandbox pfsync apply
      pfsync sandbox --latency-ms 50 --rate-limit 100 --seed 1 --data sandbox.json
    """
    from pfsync.sandbox import Sandbox

    server = Sandbox(
        host,
        port,
        username=username,
        password=password,
        data_file=data_file,
        idempotency_keys=idempotency_keys,
        latency_ms=latency_ms,
        rate_limit=rate_limit,
        fail_rate=fail_rate,
        lose_response_rate=lose_response_rate,
        seed=seed,
    )
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as exc:
            message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            raise click.ClickException(message) from None
        click.echo(server.url)
        sys.stdout.flush()
        if not _is_loopback(host):
            click.echo(f"Warning: listening on {host}, reachable beyond this machine.", err=True)
        click.echo(
            f"Sandbox Pocketflows API at {server.url} (user {username!r}); "
            "SIGINT or SIGTERM stops it.",
            err=True,
        )
        while True:
            signal.pause()
    except _StopSignal:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


COMMANDS = [sandbox]
