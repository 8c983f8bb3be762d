""" "Did you mean …?": the one known name close enough to a mistyped one to be worth naming."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's ratio: 0.6 (its default) let `vip_revenue` suggest `signup_event` (0.61); a typo of
# one or two characters in a name of four or more stays above 0.7 (`nmae` → `name` 0.75).
CUTOFF = 0.7


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name`, if it is close enough to be a typo of it; else None."""
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=CUTOFF)
    return found[0] if found else None
