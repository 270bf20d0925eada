"""`python -m bench [NAME ...] [options]`: run the benchmarks, then write docs/BENCHMARKS.md.

With no name, all of them in order (calls first: the pipeline's floor and the cost model use its
figures). Options after one name go to that benchmark (`python -m bench pipeline --events 500`).
Benchmarks written by other modules (logmining, detect, logscan_cost) run when present.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.report import MixedCommits, write_report

ORDER: tuple[str, ...] = (
    "calls",
    "pipeline",
    "memory",
    "latency",
    "logscan_cost",
    "cost",
    "recovery",
    "logmining",
    "detect",
    "detector_holdout",
)
OPTIONAL = frozenset({"logmining", "detect", "detector_holdout", "logscan_cost"})


def _entry(name: str) -> Callable[..., Any] | None:
    try:
        module = importlib.import_module(f"bench.{name}")
    except ImportError:
        if name in OPTIONAL:
            return None
        raise
    main = getattr(module, "main", None)
    return main if callable(main) else None


def _call(entry: Callable[..., Any], args: list[str]) -> Any:
    """Entries take their argv, or (other modules') nothing."""
    return entry(args) if inspect.signature(entry).parameters else entry()


def run_all() -> int:
    started = time.monotonic()
    for name in ORDER:
        if name == "memory":
            # The pipeline run just took the same 2,000 events through the daemon: reuse it.
            from bench import memory
            from bench.common import read_result

            pipeline = read_result("pipeline")
            if pipeline is not None:
                memory.write(memory.from_daemon_run(pipeline["daemon"]))
                continue
        entry = _entry(name)
        if entry is None:
            print(f"bench: {name} not present, skipped")
            continue
        print(f"bench: {name} ...", flush=True)
        _call(entry, [])
    print(f"bench: report -> {write_report()} ({time.monotonic() - started:.0f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return run_all()
    name, rest = args[0], args[1:]
    if name not in ORDER:
        print(f"bench: unknown benchmark {name!r}; one of: {', '.join(ORDER)}", file=sys.stderr)
        return 2
    entry = _entry(name)
    if entry is None:
        print(f"bench: {name} is not present", file=sys.stderr)
        return 2
    code = _call(entry, rest)
    try:
        print(f"bench: report -> {write_report()}")
    except MixedCommits as err:
        print(f"bench: {name} written; docs/BENCHMARKS.md left as it was: {err}")
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
