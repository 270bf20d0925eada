"""Memory: the daemon's resident size idle and after the 2,000-event run (target < 120 MiB).

The daemon is its own process (`python -m bench.agent`), so its `VmRSS` is its own: no
benchmark code, no emulator, no feeder in it. Idle is read 2 s after it is ready; during the run
it is sampled once a second for the peak, which also takes the kernel's high-water mark
(`VmHWM`). `python -m bench` takes these figures from the pipeline run (the same 2,000 events);
`python -m bench memory` runs the daemon's half of the pipeline alone.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import LOG_DIR, workload, write_result
from bench.harness import DEFAULT_DEPTH, stack
from bench.pipeline import DEFAULT_EVENTS, run_daemon_feed

TARGET_MIB = 120.0


def from_daemon_run(daemon: Mapping[str, Any]) -> dict[str, Any]:
    """The memory result from a `run_daemon_feed` result."""
    peak = float(daemon["rss_peak_mib"])
    return {
        "events": daemon["events"],
        "mix": daemon["expected_outcomes"],
        "rss_idle_mib": daemon["rss_idle"]["rss_mib"],
        "rss_after_mib": daemon["rss_after"]["rss_mib"],
        "rss_peak_mib": peak,
        "targets": {"rss_max_mib": TARGET_MIB, "met": peak < TARGET_MIB},
        "method": (
            "VmRSS of the daemon process (python -m bench.agent: aiops-agent run with instant "
            "actions) 2 s after it is ready, sampled every second while "
            f"{daemon['events']} events go through (closed loop, {DEFAULT_DEPTH} outstanding), "
            "and after; the peak includes VmHWM."
        ),
    }


async def measure(events: int = DEFAULT_EVENTS) -> dict[str, Any]:
    async with stack("memory") as stack_:
        daemon = await run_daemon_feed(
            stack_, workload(events), DEFAULT_DEPTH, LOG_DIR / "memory-agent.log"
        )
    return from_daemon_run(daemon)


def write(result: Mapping[str, Any]) -> None:
    path = write_result("memory", dict(result))
    print(
        f"memory: idle {result['rss_idle_mib']} MiB, after {result['rss_after_mib']} MiB, "
        f"peak {result['rss_peak_mib']} MiB -> {path}"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.events))
    write(result)
    return result
