"""How long the fuzz targets run: a bounded number of examples each, about 60 s in all on 2 cores.

`FUZZ_SCALE=20 pytest -m fuzz` runs each target twenty times longer (a soak); every
numbered case of the hardening issue is an explicit `@example` of its target, so it
runs every time whatever the scale.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
_F = TypeVar("_F", bound=Callable[..., Any])


def budget(examples: int) -> Callable[[_F], _F]:
    """Hypothesis settings for a fuzz target: `examples` (scaled), no per-example deadline."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        database=None,  # a fuzz run is not a regression suite: the seeds below are
    )
