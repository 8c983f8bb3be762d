"""DesiredTrigger: one trigger as its manifest declares it, from manifest to lockfile.

The same value flows through every step: the manifests yield it, a plan entry carries it,
a saved plan stores it, apply sends it, and the journal and the lockfile record it while a
create's outcome is unknown. Only the action around it changes (create, replace, re-send).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pfsync.support.canonical import body_digest


def make_address(business: str, key: str) -> str:
    """A trigger's address, `BUSINESS/KEY`, unique across all manifests."""
    return f"{business}/{key}"


@dataclass(frozen=True)
class DesiredTrigger:
    """A trigger to exist at `address`: its create-trigger body and where it is declared.

    `body` is exactly the create-trigger request body and `digest` its canonical digest ("" when
    it was not computed: validate needs none).
    `file` is the manifest path shown to users (relative to the config directory when
    inside it) and `line` the 1-based line of its `key:`, 0 when only the file is known
    (restored from a journal, a lockfile or a saved plan). `replaces` is the id of the
    trigger a replacement retires, None for a first create. `document_digest` is the digest of the
    manifest document as written, before `${values…}` are substituted (None when not known: a
    record made before pfsync kept it); `apply --after` compares it across environments.
    """

    business: str
    key: str
    body: dict[str, Any]
    digest: str
    revision: int
    file: str
    line: int = 0
    replaces: str | None = None
    document_digest: str | None = None

    @classmethod
    def declared(
        cls,
        business: str,
        key: str,
        revision: int,
        body: dict[str, Any],
        file: str,
        line: int,
        document_digest: str | None = None,
    ) -> DesiredTrigger:
        """The trigger a manifest declares (its digest computed here, once)."""
        return cls(
            business, key, body, body_digest(body), revision, file, line, None, document_digest
        )

    @classmethod
    def at_address(
        cls,
        address: str,
        body: dict[str, Any],
        digest: str,
        revision: int,
        file: str,
        replaces: str | None = None,
        document_digest: str | None = None,
    ) -> DesiredTrigger:
        """The trigger recorded for `address` (a journal, lockfile or saved-plan record)."""
        business, _, key = address.partition("/")
        return cls(business, key, body, digest, revision, file, 0, replaces, document_digest)

    @classmethod
    def from_record(cls, address: str, fields: Mapping[str, Any]) -> DesiredTrigger:
        """The trigger a journal or lockfile record stores for `address` (already schema-checked):
        what `record_fields` wrote."""
        return cls.at_address(
            address,
            fields["body"],
            fields["digest"],
            fields["revision"],
            fields["file"],
            fields["replaces"],
            fields.get("document_digest"),
        )

    @property
    def address(self) -> str:
        """`BUSINESS/KEY`."""
        return make_address(self.business, self.key)

    @property
    def source(self) -> str:
        """`file:line` where the trigger is declared (the file alone when the line is unknown)."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def replacing(self, trigger_id: str | None) -> DesiredTrigger:
        """The same trigger as the replacement of `trigger_id`."""
        return dataclasses.replace(self, replaces=trigger_id)

    def record_fields(self) -> dict[str, Any]:
        """The fields a journal or lockfile record stores for it (its address is the key;
        `document_digest` only when known, so records made without it stay byte-identical)."""
        fields = {
            "digest": self.digest,
            "body": self.body,
            "revision": self.revision,
            "file": self.file,
            "replaces": self.replaces,
        }
        if self.document_digest is not None:
            fields["document_digest"] = self.document_digest
        return fields


MOVED = "Moved"
REMOVED = "Removed"
IMPORT = "Import"
NOT_CREATED = "NotCreated"
DECLARATION_KINDS = (MOVED, REMOVED, IMPORT, NOT_CREATED)


@dataclass(frozen=True)
class Declaration:
    """A record change declared in a manifest file, carried out by apply without a create.

    `Moved`: the record of `key` (the `from:`) becomes the record of `to`. `Removed`: the
    record of `key` with exactly `trigger_id` is forgotten. `Import`: `trigger_id`, found in
    Pocketflows, is recorded for `key` with its manifest's body. `NotCreated`: the uncertain
    create of `key` whose Idempotency-Key is `intent` is sent once more. An `Import` naming the
    recorded id acknowledges a hand edit only of the body whose digest is `acknowledges`. Every
    declaration is bound to the address it acts on (`BUSINESS/KEY`), so a stale one can act on
    nothing else. `file` and `line` (of its `kind:`) are where it is declared; `environment`
    the one it is for (None: every environment, or pfsync.yaml defines none).
    """

    kind: str
    business: str
    key: str
    file: str
    line: int
    to: str | None = None
    trigger_id: str | None = None
    environment: str | None = None
    intent: str | None = None
    acknowledges: str | None = None

    @property
    def address(self) -> str:
        """The address it acts on (a `Moved`'s `from`)."""
        return make_address(self.business, self.key)

    @property
    def target(self) -> str:
        """A `Moved`'s new address (`BUSINESS/TO`); the address itself for the other kinds."""
        return make_address(self.business, self.to) if self.to is not None else self.address

    @property
    def source(self) -> str:
        """`file:line` where it is declared."""
        return f"{self.file}:{self.line}"

    def describe(self) -> str:
        """`Moved biz/a → biz/b`, `Removed biz/a (trigger trg_1)`, as plan and apply name it."""
        if self.kind == MOVED:
            return f"{self.kind} {self.address} → {self.target}"
        if self.kind == NOT_CREATED:
            return f"{self.kind} {self.address} (Idempotency-Key {self.intent})"
        return f"{self.kind} {self.address} (trigger {self.trigger_id})"
