"""How long a silence or a freeze lasts, as operators write it: one grammar for the CLI and the
console (`30m`, `2h`, `1h30m`, `1d`, `2w`; seconds, minutes, hours, days, weeks)."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1h30m`, `1d`, `2w` -> timedelta (spaces and case ignored); ValueError
    saying what is accepted otherwise, or that it must be positive."""
    compact = (text or "").strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"duration {text!r} is not like 30m, 2h, 1h30m or 1d")
    seconds = sum(float(n) * _SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return timedelta(seconds=seconds)
