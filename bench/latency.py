"""End-to-end latency: from a message becoming visible on the queue to its incident's outcome.

An open-loop feeder sends the pipeline's mix at a fixed rate (10/s, then 200/s) whatever the
daemon does. Visible = the `SendMessageBatch` call returned. The outcome's time is the daemon's
own log line for it (structlog binds `event_id` to every line of an event's work, timestamps in
microseconds, same clock): `event.normal` for a NORMAL event, `event.duplicate` for a duplicate
delivery, the transition to COMPLETED for a recovery and to AWAITING_APPROVAL for a manual
review. Queue lag is the daemon's own `aiops_sqs_message_age_seconds` histogram (receive time
minus SentTimestamp), and the backlog is sampled once a second.

200/s is above what one moto server process sustains on two cores (about 100 SQS messages/s,
EMULATORS.md): that run shows the emulator's limit and the queue lag it causes, said so in the
result, not the daemon's latency at 200/s on real SQS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from aiops_agent.aws.clients import AwsClients
from bench.common import (
    LOG_DIR,
    Feed,
    histogram_quantile,
    summary,
    workload,
    write_result,
)
from bench.harness import (
    AgentChild,
    Samples,
    Stack,
    agent,
    deleted,
    delta,
    feed_open_loop,
    stack,
    wait_until,
)

DEFAULT_RATES: tuple[tuple[float, float], ...] = ((10.0, 30.0), (200.0, 5.0))
"""(events per second, seconds of feeding)."""
EMULATOR_CEILING = 100.0
DONE_LINES = {
    "event.normal": "normal",
    "event.duplicate": "duplicate",
}
TERMINAL_TRANSITIONS = {"COMPLETED": "recovered", "AWAITING_APPROVAL": "review"}


def outcome_times(lines: Iterable[str]) -> dict[str, float]:
    """`Feed.key` -> epoch seconds of the daemon's log line that marks the event's outcome."""
    found: dict[str, float] = {}
    for line in lines:
        if '"event_id"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        name = record.get("event")
        kind = DONE_LINES.get(name) if isinstance(name, str) else None
        if name == "incident.transition":
            kind = TERMINAL_TRANSITIONS.get(str(record.get("to_state")))
        if kind is None or "timestamp" not in record:
            continue
        at = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00"))
        found.setdefault(f"{kind}:{record['event_id']}", at.timestamp())
    return found


def latencies(sent_at: dict[str, float], done_at: dict[str, float]) -> dict[str, list[float]]:
    """Seconds from visible to outcome, by kind (feeds with no outcome line are left out)."""
    by_kind: dict[str, list[float]] = {}
    for key, sent in sent_at.items():
        if key in done_at:
            by_kind.setdefault(key.split(":", 1)[0], []).append(max(0.0, done_at[key] - sent))
    return by_kind


def age_buckets(samples: Samples) -> list[tuple[float, float]]:
    return [
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "aiops_sqs_message_age_seconds_bucket"
    ]


async def run_rate(
    child: AgentChild, stack_: Stack, sqs: Any, rate: float, seconds: float, seed: int
) -> dict[str, Any]:
    feeds: list[Feed] = workload(max(10, int(rate * seconds)), seed=seed)
    before = await child.metrics()
    base = await deleted(child)
    backlog: list[int] = []

    async def observe(sent: int) -> None:
        backlog.append(sent - (await deleted(child) - base))

    feed_log = await feed_open_loop(sqs, stack_.queue_url, feeds, rate, observe=observe)

    async def drained() -> bool:
        left = len(feeds) - (await deleted(child) - base)
        backlog.append(left)
        return left <= 0

    await wait_until(drained, within=900, interval=1.0)
    changed = delta(await child.metrics(), before)
    done_at = outcome_times(child.log_path.read_text(errors="replace").splitlines())
    by_kind = latencies(feed_log.sent_at, done_at)
    every = [v for values in by_kind.values() for v in values]
    buckets = age_buckets(changed)
    count = changed.get(("aiops_sqs_message_age_seconds_count", ()), 0.0)
    lag_sum = changed.get(("aiops_sqs_message_age_seconds_sum", ()), 0.0)
    sent = round(len(feeds) / feed_log.seconds, 1) if feed_log.seconds else None
    return {
        "rate_target": rate,
        "rate_sent": sent,
        "events": len(feeds),
        "measured": len(every),
        "latency_s": summary(every),
        "latency_s_by_outcome": {kind: summary(v) for kind, v in sorted(by_kind.items())},
        "queue_lag_s": {
            "mean": round(lag_sum / count, 4) if count else None,
            "p50": histogram_quantile(0.5, buckets),
            "p99": histogram_quantile(0.99, buckets),
        },
        "max_backlog": max(backlog, default=0),
        # What was really sent, not what was asked for: the feeder's own sends slow down
        # when the emulator does.
        "above_emulator_ceiling": sent is not None and sent > EMULATOR_CEILING,
        "feeder_short_of_target": sent is None or sent < 0.9 * rate,
    }


def reading(runs: Sequence[dict[str, Any]]) -> str:
    """What the runs show, worded from their figures."""
    said = []
    for run in runs:
        target, sent = run["rate_target"], run["rate_sent"]
        lag, lat = run["queue_lag_s"].get("p50"), run["latency_s"].get("p50")
        backlog = run["max_backlog"]
        behind = bool(sent) and backlog > sent
        """More than a second of sends waiting in the queue: the daemon handled fewer."""
        if run["feeder_short_of_target"]:
            pace = (
                f"the daemon, on the same emulator, handled fewer than that: the backlog grew "
                f"to {backlog} and queue lag is p50 {lag} s of the {lat} s p50 latency"
                if behind
                else f"the daemon kept up with what was sent (backlog up to {backlog}, queue "
                f"lag p50 {lag} s of the {lat} s p50 latency)"
            )
            said.append(
                f"At a target of {target:g}/s the feeder sent only {sent}/s (the emulator "
                f"answered its sends no faster); {pace}."
            )
        else:
            said.append(
                f"At {sent}/s (target {target:g}/s) the p50 latency is {lat} s, of which "
                f"queue lag p50 {lag} s; backlog up to {run['max_backlog']}."
            )
    return " ".join(said)


async def measure(rates: Sequence[tuple[float, float]] = DEFAULT_RATES) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    async with (
        stack("latency") as stack_,
        agent(stack_, LOG_DIR / "latency-agent.log") as child,
        AwsClients(endpoint_url=stack_.endpoint, max_attempts=3) as clients,
    ):
        sqs = await clients.client("sqs")
        for i, (rate, seconds) in enumerate(rates):
            runs.append(await run_rate(child, stack_, sqs, rate, seconds, seed=30 + i))
    return {
        "runs": runs,
        "note": reading(runs),
        "method": (
            "open-loop feeder (batches of up to 10 every 50 ms at the target rate, the "
            "pipeline's 60/20/10/10 mix); latency = the daemon's outcome log line (µs "
            "timestamps) minus the time the SendMessageBatch call returned."
        ),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of feeding per rate")
    args = parser.parse_args(argv)
    rates = DEFAULT_RATES
    if args.seconds is not None:
        rates = tuple((rate, args.seconds) for rate, _ in DEFAULT_RATES)
    result = asyncio.run(measure(rates))
    path = write_result("latency", result)
    for run in result["runs"]:
        lat = run["latency_s"]
        print(
            f"latency at {run['rate_target']:g}/s: p50 {lat.get('p50')} s, p99 {lat.get('p99')} s"
        )
    print(f"latency -> {path}")
    return result
