"""The offline checks of declarations against each other and the declared triggers.

A declaration is bound to the addresses it names; these checks refuse what could make it act on
something else or nothing sensible: a `to`, an `Import` or a `NotCreated` no trigger declares
(a create sent once more for a key no longer declared would make a trigger no one wants), a
`from` still declared, two declarations for one address, and `Moved` chains that come back to
where they started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pfsync.models import IMPORT, MOVED, NOT_CREATED, Declaration, DesiredTrigger
from pfsync.support.diagnostics import Diagnostic
from pfsync.support.suggest import closest


def declaration_diagnostics(
    declarations: Sequence[Declaration],
    triggers: Sequence[DesiredTrigger],
    reported_files: set[str] | None = None,
) -> list[Diagnostic]:
    """Every problem of `declarations` (only those in `reported_files` if given)."""
    declared = {trigger.address: trigger for trigger in triggers}
    ordered = sorted(declarations, key=lambda d: (d.file, d.line))
    moves = [d for d in ordered if d.kind == MOVED]
    problems = _repeated(ordered)
    sources = {move.address for move in moves}
    for declaration in ordered:
        if declaration.kind == MOVED:
            problems += _moved_problems(declaration, declared, sources)
        elif declaration.kind in (IMPORT, NOT_CREATED) and declaration.address not in declared:
            # a NotCreated of a key no longer declared would create a trigger no one wants
            problems.append(_undeclared(declaration, declared, "key"))
    problems += _cycles(moves)
    if reported_files is not None:
        problems = [p for p in problems if p.file in reported_files]
    return problems


def _problem(declaration: Declaration, message: str, path: str, hint: str) -> Diagnostic:
    return Diagnostic(declaration.file, declaration.line, 1, message, path, hint)


def _claims(declaration: Declaration) -> list[tuple[str, str]]:
    """The addresses a declaration acts on, each with the field that names it."""
    if declaration.kind == MOVED:
        return [(declaration.address, "from"), (declaration.target, "to")]
    return [(declaration.address, "key")]


def _repeated(declarations: Iterable[Declaration]) -> list[Diagnostic]:
    """Two declarations for one address (a chain of Moved, A → B and B → C, is one move on;
    declarations for different environments do not meet)."""
    claims: dict[str, list[tuple[Declaration, str]]] = {}
    for declaration in declarations:
        for address, field in _claims(declaration):
            claims.setdefault(address, []).append((declaration, field))
    problems = []
    for address, held in claims.items():
        for n, (declaration, field) in enumerate(held):
            for earlier, earlier_field in held[:n]:
                if _may_share(declaration, field, earlier, earlier_field):
                    continue
                problems.append(
                    _problem(
                        declaration,
                        f"two declarations for {address}: here and at {earlier.source}",
                        f"$.{field}",
                        "each address takes one declaration at a time; delete one of them",
                    )
                )
                break
    return problems


def _may_share(one: Declaration, field: str, other: Declaration, other_field: str) -> bool:
    """Whether two claims of one address go together: a chain of Moved, or two environments."""
    if one is other:
        return True
    if one.kind == other.kind == MOVED and {field, other_field} == {"from", "to"}:
        return True
    return None not in (one.environment, other.environment) and one.environment != other.environment


def _moved_problems(
    move: Declaration, declared: dict[str, DesiredTrigger], sources: set[str]
) -> list[Diagnostic]:
    problems = []
    still = declared.get(move.address)
    if still is not None:
        problems.append(
            _problem(
                move,
                f"{move.address} is still declared (at {still.source}); the `from` of a Moved "
                "is the old key, which no trigger declares any more",
                "$.from",
                "rename the key in that manifest, or delete this Moved",
            )
        )
    if move.target not in declared and move.target not in sources and move.to != move.key:
        keys = {t.key for t in declared.values() if t.business == move.business}
        close = closest(move.to or "", keys)
        hint = f"did you mean {close}?" if close else "declare a trigger with this key"
        problems.append(
            _problem(
                move,
                f"no trigger declares {move.target}, the `to` of this Moved",
                "$.to",
                hint,
            )
        )
    return problems


def _cycles(moves: Sequence[Declaration]) -> list[Diagnostic]:
    """A `Moved` chain that comes back to its start, reported once at its first declaration."""
    following = {move.address: move for move in reversed(moves)}  # the first of repeated ones
    problems = []
    reported: set[str] = set()
    for move in moves:
        chain = [move]
        seen = {move.address}
        while chain[-1].target in following and chain[-1].target not in seen:
            seen.add(chain[-1].target)
            chain.append(following[chain[-1].target])
        if chain[-1].target != move.address or move.address in reported:
            continue
        reported.update(seen)
        first = min(chain, key=lambda d: (d.file, d.line))
        path = " → ".join([d.address for d in chain] + [move.address])
        problems.append(
            _problem(
                first,
                f"the Moved declarations {path} make a cycle",
                "$.to",
                "a chain of Moved ends at a key a trigger declares; delete the one that goes back",
            )
        )
    return problems


def _undeclared(
    declaration: Declaration, declared: dict[str, DesiredTrigger], field: str
) -> Diagnostic:
    """No trigger declares the address this declaration records (with "did you mean")."""
    keys = {t.key for t in declared.values() if t.business == declaration.business}
    close = closest(declaration.key, keys)
    return _problem(
        declaration,
        f"no trigger declares {declaration.address}, the `{field}` of this {declaration.kind}",
        f"$.{field}",
        f"did you mean {close}?" if close else "declare a trigger with this key",
    )
