"""The lock a run holds inside a remote store's lockfile, as the lockfile's `lock` records it.

    StateLockRecord     id (for `state unlock`), host, pid, run_url, since, operation; in CI its
                        ci_job, and took_over: the id and CI job of a dead attempt's lock that
                        a later attempt of the same job replaced
    .describe()         the holder, as errors name it
    .to_json(), StateLockRecord.from_json(data)

The file store uses an OS lock instead (`pfsync.state.lock`); remote stores make and explain
these records in `pfsync.state.stores.lock_records`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pfsync.state.ci_job import CiJob


@dataclass(frozen=True)
class StateLockRecord:
    """The lock a run holds inside a remote store's lockfile (the file store uses flock)."""

    id: str
    host: str
    pid: int
    run_url: str | None
    since: str
    operation: str
    ci_job: CiJob | None = None  # absent in records written before pfsync recorded it
    took_over: tuple[str, CiJob] | None = None  # the id and job of the dead attempt's lock

    def describe(self) -> str:
        """`apply by pid 12 on host ci-7 since 2026-01-31T12:00:00Z (https://…, attempt 1 of
        job apply in GitHub Actions run 42), lock ID`."""
        about = [part for part in (self.run_url, self.ci_job and self.ci_job.describe()) if part]
        where = f" ({', '.join(about)})" if about else ""
        return (
            f"{self.operation} by pid {self.pid} on host {self.host} since {self.since}{where}, "
            f"lock {self.id}"
        )

    def to_json(self) -> dict[str, Any]:
        """The lockfile form (`ci_job` and `took_over` only when known)."""
        document: dict[str, Any] = {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "run_url": self.run_url,
            "since": self.since,
            "operation": self.operation,
        }
        if self.ci_job is not None:
            document["ci_job"] = self.ci_job.to_json()
        if self.took_over is not None:
            document["took_over"] = {"id": self.took_over[0], "ci_job": self.took_over[1].to_json()}
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StateLockRecord:
        """A lockfile's `lock` (already schema-checked)."""
        job, took_over = data.get("ci_job"), data.get("took_over")
        return cls(
            **{k: data[k] for k in ("id", "host", "pid", "run_url", "since", "operation")},
            ci_job=CiJob.from_json(job) if job else None,
            took_over=(took_over["id"], CiJob.from_json(took_over["ci_job"]))
            if took_over
            else None,
        )
