"""The business id `pfsync init` writes when it is given none: a placeholder, never sent.

init writes it (and `PLACEHOLDER-NAME` for each of several environments); `validate` warns where
pfsync.yaml sets it, and `plan` and `apply` refuse it unless they run in sandbox mode.
"""

from __future__ import annotations

PLACEHOLDER_BUSINESS = "biz_123"


def is_placeholder_business(business: str | None) -> bool:
    """Whether `business` is init's placeholder, or one it made from it for an environment."""
    return business is not None and (
        business == PLACEHOLDER_BUSINESS or business.startswith(PLACEHOLDER_BUSINESS + "-")
    )
