"""Python's cyclic garbage collector paused while a run builds data that holds no cycles.

Loading 10,000 manifests allocates some hundreds of thousands of dicts and lists and keeps
them all. Each time allocations pass the collector's threshold it walks the young ones, and
from time to time all of them, looking for cycles that are not there: a tenth of a cold
plan, and most of the time spent unpickling what the worker processes send back. Reference
counting still frees everything not in a cycle, so pausing the collector changes no result;
that loading good and bad files leaves no cycle behind is tested (tests/test_no_cycles.py).

    collector_paused()    a context manager; nested uses keep it paused until the outermost ends
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; back as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
