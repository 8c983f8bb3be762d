"""Apply's progress lines worded for sandbox mode (`--sandbox` rehearsals), by rewriting.

What is left of rewording finished English: apply's own progress lines until they are built
with `Config.invocation` as the plan's remedies are (pfsync/plan/remedies.py); delete this
module then. A command that carries `--sandbox` already is left alone.
"""

from __future__ import annotations

import re

_STATE_COMMAND = re.compile(r"`pfsync state (rm|mv|import) (?!--sandbox)([^`]*)`")
_LOOK_UP = re.compile(r"((?:[Ll]ook for (?:it|the trigger)|find it)) in Pocketflows")


def sandbox_wording(text: str) -> str:
    """A progress line as it applies in sandbox mode.

    Its state commands gain `--sandbox` (without it they would change the real lockfile), and
    where a person would look a trigger up in Pocketflows, `pfsync sandbox list` shows it.
    """
    text = _STATE_COMMAND.sub(r"`pfsync state \1 --sandbox \2`", text)
    return _LOOK_UP.sub(r"\1 with `pfsync sandbox list`", text)
