"""Time to recovery: from the event's time to the verified outcome, per scenario, with the
production daemon and its default settings, on the emulator.

For each scenario (bench/recovery_cases.py) a real resource is made on the emulator and broken
the way the demo breaks it (demo/scenarios.py: an instance stopped by a person, an instance
terminated, a Lambda function deleted, a parameter overwritten), stopped by a system fault (a
scheduled retirement: DescribeInstances says `Server.ScheduledStop`) or opened to the world (a
security group rule for 0.0.0.0/0). The events AWS would emit go through EventBridge to the
queue, and `aiops-agent run` (a child process with default settings: the real action catalog,
the 120 s wait for a change's author, the default verify interval) takes them. The demo's
Terraform stand-in plays CodeBuild's part for IaC restores, as in the demo. The agent reaches
the emulator through the test realism proxy (tests/aws_proxy.py), which passes every call on and
answers DescribeInstances for the system-stopped instance as AWS would.

Each scenario runs `--rounds` times on fresh resources: all scenarios of a round at once, a
round started every `--every` seconds (rounds overlap: a person's stop waits 120 s).

Measured from the incident's own record: the time from the event's `time` (taken by this
process just before PutEvents, at microsecond resolution) to the verified outcome (the first
terminal timeline entry; the notification comes after it), and the time spent in each state
(the gap between consecutive timeline entries, charged to the earlier one). The report says
which part is the agent's own (reaching the queue and being read, analysis, planning, the
deliberate wait for an author) and which waits on AWS (EXECUTING: the API call or the build;
VERIFYING: the resource coming up and the verify interval).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiops_agent.app import build_store
from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.iac import play_terraform
from aiops_agent.domain.models import Incident
from aiops_agent.domain.ports import IncidentStore
from bench.common import LOG_DIR, percentile, write_result
from bench.harness import agent, stack
from bench.recovery_cases import (
    PERSON_STOP,
    SYSTEM_STOP,
    SYSTEM_STOP_CODE,
    Act,
    Case,
    cases,
    resource_type,
)
from bench.report import table
from tests.aws_proxy import AwsProxy

SEED_PROMISE_S = 25.0
"""The seed's README: a stopped instance back in about 25 seconds."""
DEFAULT_ROUNDS = 10
DEFAULT_EVERY_S = 30.0
"""10 runs per scenario for p50/p95, a round every 30 s: the run takes about 7 minutes (7.1 on
the shared 2-core machine at load 3: a 20 s start, 9 x 30 s of round starts, the last round's
person's stop waiting 120 s for its author). Sequential rounds would take 2 minutes each."""
DEADLINE_S = 600.0
POLL_S = 5.0
"""How often the store is read for outcomes. The times come from the incidents' timelines, so
this only decides when a round ends; reading less leaves moto's DynamoDB to the daemon."""
AGENT_STATES = ("RECEIVED", "ANALYZING", "PLANNING")
AWS_STATES = ("EXECUTING", "VERIFYING")
CHANGED_SETTINGS = {"AIOPS_BREAKER_THRESHOLD": "1000000000"}
"""The one default changed, and why: the mass-failure breaker (default: more than 10
recoveries in 5 minutes) would rightly stop this benchmark's own pace of 6 recoveries a round.
The breaker still counts each recovery (the same calls); only its verdict differs."""


def verified_at(incident: Incident) -> datetime:
    """When the outcome was verified: the first terminal timeline entry."""
    for entry in incident.timeline:
        if entry.state.terminal:
            return entry.at
    return incident.timeline[-1].at if incident.timeline else incident.updated_at


def state_durations(incident: Incident) -> dict[str, float]:
    """Seconds spent in each state up to the verified outcome, from the gaps between
    consecutive timeline entries."""
    spent: dict[str, float] = {}
    for before, after in itertools.pairwise(incident.timeline):
        if before.state.terminal:
            break
        state = before.state.value
        spent[state] = spent.get(state, 0.0) + (after.at - before.at).total_seconds()
    return spent


def measure_incident(incident: Incident, event_at: datetime) -> dict[str, Any]:
    """What one recovery took, from the event's time, and where the time went: the agent's
    part, the part that waits on AWS, and whatever is neither (a person's approval)."""
    seconds = (verified_at(incident) - event_at).total_seconds()
    spent = state_durations(incident)
    intake = (incident.created_at - event_at).total_seconds()
    agent_s = intake + sum(spent.get(s, 0.0) for s in AGENT_STATES)
    aws_s = sum(spent.get(s, 0.0) for s in AWS_STATES)
    return {
        "outcome": incident.workflow_state.value,
        "seconds": round(seconds, 3),
        "intake_s": round(intake, 3),
        "by_state_s": {k: round(v, 3) for k, v in spent.items()},
        "agent_s": round(agent_s, 3),
        "waits_on_aws_s": round(aws_s, 3),
        "other_s": round(seconds - agent_s - aws_s, 3),
    }


async def _wait_terminal(
    store: IncidentStore, resource_keys: Mapping[str, str], within: float
) -> dict[str, Incident]:
    """resource id -> its terminal incident, for every resource in `resource_keys`."""
    found: dict[str, Incident] = {}
    deadline = time.monotonic() + within
    while len(found) < len(resource_keys) and time.monotonic() < deadline:
        for rid, key in resource_keys.items():
            if rid in found:
                continue
            latest = await store.latest_for_resource(key, 5)
            done = [i for i in latest if i.terminal and i.recovery_actions]
            if done:
                found[rid] = done[0]
        if len(found) < len(resource_keys):
            await asyncio.sleep(POLL_S)
    return found


async def run_round(
    clients: AwsClients, store: IncidentStore, chosen: Sequence[Case], within: float
) -> dict[str, dict[str, Any]]:
    events = await clients.client("events")
    prepared = [(case, await case.prepare(clients)) for case in chosen]
    event_at: dict[str, datetime] = {}
    keys: dict[str, str] = {}

    async def put(entries: list[dict[str, Any]]) -> None:
        answer = await events.put_events(Entries=entries)
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {answer['Entries']}")

    async def put_later(delay: float, act: Act, res: dict[str, str]) -> None:
        await asyncio.sleep(delay)
        await put(await act(clients, res))

    async with asyncio.TaskGroup() as tasks:
        for case, res in prepared:
            entries = await case.act(clients, res)
            rid = res[case.key]
            event_at[rid] = datetime.now(UTC)
            await put(entries)
            if case.later is not None:
                tasks.create_task(put_later(*case.later, res))
            keys[rid] = f"{resource_type(case)}:{clients.region}:{rid}"
        done = await _wait_terminal(store, keys, within)
    out: dict[str, dict[str, Any]] = {}
    for case, res in prepared:
        rid = res[case.key]
        incident = done.get(rid)
        row = (
            measure_incident(incident, event_at[rid])
            if incident is not None
            else {"outcome": "none within the deadline", "seconds": None}
        )
        out[case.name] = {"resource_id": rid, **row}
    return out


def aggregate(rounds: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Per scenario: p50/p95 of the total, the medians of the parts, the outcomes seen."""
    table: dict[str, Any] = {}
    for name in rounds[0]:
        runs = [r[name] for r in rounds]
        totals = [float(r["seconds"]) for r in runs if r.get("seconds") is not None]
        states = sorted({s for r in runs for s in r.get("by_state_s", {})})
        measured = [r for r in runs if r.get("seconds") is not None]
        slowest = max(measured, key=lambda r: float(r["seconds"]), default=None)
        table[name] = {
            "runs": len(runs),
            "measured": len(totals),
            "min_s": round(min(totals), 2) if totals else None,
            "max_s": round(max(totals), 2) if totals else None,
            "slowest_by_state_s": dict(slowest.get("by_state_s", {})) if slowest else {},
            "outcomes": sorted({str(r["outcome"]) for r in runs}),
            "p50_s": round(percentile(totals, 50), 2) if totals else None,
            "p95_s": round(percentile(totals, 95), 2) if totals else None,
            "intake_p50_s": _median(runs, "intake_s"),
            "agent_p50_s": _median(runs, "agent_s"),
            "waits_on_aws_p50_s": _median(runs, "waits_on_aws_s"),
            "other_p50_s": _median(runs, "other_s"),
            "by_state_p50_s": {
                s: round(
                    statistics.median(
                        r["by_state_s"].get(s, 0.0) for r in runs if "by_state_s" in r
                    ),
                    2,
                )
                for s in states
            },
        }
    return table


def _median(runs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


async def management_trail(clients: AwsClients, name: str) -> None:
    """A trail logging management events, as the account the agent watches must have (the
    daemon checks at start-up): without one, a stop made through the API waits for a person,
    since no CloudTrail record could ever name its author (demo/tour.py does the same)."""
    s3 = await clients.client("s3")
    await s3.create_bucket(Bucket=f"{name}-trail")
    cloudtrail = await clients.client("cloudtrail")
    await cloudtrail.create_trail(Name=name, S3BucketName=f"{name}-trail", IsMultiRegionTrail=True)
    await cloudtrail.start_logging(Name=name)


class _Reasons:
    """The proxy's StateReason rules this run switched on, by instance: how often the agent
    read a system-stopped instance's reason."""

    def __init__(self, proxy: AwsProxy) -> None:
        self._proxy = proxy
        self.reads: dict[str, Any] = {}

    def state_reason(
        self,
        instance_id: str,
        *,
        code: str | None = None,
        message: str | None = None,
        transition_reason: str | None = None,
        states: Iterable[str] | None = None,
    ) -> Any:
        rule = self._proxy.state_reason(
            instance_id,
            code=code,
            message=message,
            transition_reason=transition_reason,
            states=states,
        )
        self.reads[instance_id] = rule
        return rule


async def measure(rounds: int = DEFAULT_ROUNDS, every: float = DEFAULT_EVERY_S) -> dict[str, Any]:
    results: list[dict[str, dict[str, Any]]] = []
    started = time.monotonic()
    async with stack("recovery") as stack_, AwsProxy(stack_.endpoint) as proxy:
        reasons = _Reasons(proxy)
        chosen = cases(reasons)
        env = {
            # The agent sees AWS through the realism proxy; the benchmark's own calls go direct.
            "AIOPS_AWS_ENDPOINT_URL": proxy.url,
            # The daemon's own defaults ("" unsets the harness's benchmark values).
            "AIOPS_ATTRIBUTION_GRACE_SECONDS": "",
            **CHANGED_SETTINGS,
        }
        async with AwsClients(endpoint_url=stack_.endpoint, max_attempts=3) as clients:
            await management_trail(clients, stack_.settings.codebuild_project)
        async with (
            agent(stack_, LOG_DIR / "recovery-agent.log", module="aiops_agent", **env),
            AwsClients(endpoint_url=stack_.endpoint, max_attempts=3) as clients,
        ):
            store = build_store(stack_.settings, clients)
            stop = asyncio.Event()

            async def round_at(delay: float) -> dict[str, dict[str, Any]]:
                await asyncio.sleep(delay)
                return await run_round(clients, store, chosen, DEADLINE_S)

            async with asyncio.TaskGroup() as group:
                group.create_task(play_terraform(clients, store, stop))
                try:
                    async with asyncio.TaskGroup() as rounds_group:
                        tasks = [
                            rounds_group.create_task(round_at(k * every)) for k in range(rounds)
                        ]
                finally:
                    stop.set()
            results = [t.result() for t in tasks]
    for found in results:
        system = found.get(SYSTEM_STOP)
        if system is not None:
            rule = reasons.reads.get(system["resource_id"])
            system["state_reason_reads"] = rule.rewritten if rule is not None else 0
    return {
        "rounds": rounds,
        "every_s": every,
        "run_seconds": round(time.monotonic() - started, 1),
        "seed_promise_s": SEED_PROMISE_S,
        "changed_settings": CHANGED_SETTINGS,
        "system_stop": {
            "state_reason_code": SYSTEM_STOP_CODE,
            "state_reason_reads": sum(
                r.get(SYSTEM_STOP, {}).get("state_reason_reads", 0) for r in results
            ),
            "runs_read": sum(
                1 for r in results if r.get(SYSTEM_STOP, {}).get("state_reason_reads", 0) > 0
            ),
        },
        "scenarios": aggregate(results),
        "runs_detail": results,
        "method": (
            "aiops-agent run as a child process with default settings (only the endpoint, "
            "queue, tables and topic set, and the breaker threshold raised above this "
            "benchmark's own pace) on one moto server, reached through the test realism proxy "
            "(one loopback hop per call), in an account with a CloudTrail trail logging "
            "management events (as the agent requires to attribute a change). Each round "
            "makes every scenario's resource, breaks it, and puts its events through "
            "EventBridge; rounds start every "
            f"{every:g} s and overlap. The time is from just before PutEvents to the incident's "
            "first terminal timeline entry (the verified outcome). agent_s = intake (event to "
            "incident created: EventBridge, SQS, the receive) + RECEIVED, ANALYZING and "
            "PLANNING (including the wait for a change's author); waits_on_aws_s = EXECUTING "
            "+ VERIFYING (the call or the build, the resource coming up, the verify interval); "
            "other_s = anything else before the outcome (a person's approval). The system "
            f"fault is a stop whose DescribeInstances StateReason is {SYSTEM_STOP_CODE}, as AWS "
            "reports a scheduled retirement; its events are the stopping and stopped state "
            "changes, with no CloudTrail record."
        ),
    }


# ---------------------------------------------------------------- the words, from the numbers


def _largest(row: Mapping[str, Any], parts: Sequence[str]) -> tuple[str, float]:
    spent = {"intake": row.get("intake_p50_s") or 0.0, **row["by_state_p50_s"]}
    return max(((p, float(spent.get(p, 0.0))) for p in parts), key=lambda kv: kv[1])


def _scenario_line(name: str, row: Mapping[str, Any]) -> str:
    if row["p50_s"] is None:
        return f"- **{name}**: no run reached a verified outcome ({', '.join(row['outcomes'])})."
    agent_s, aws_s = row["agent_p50_s"] or 0.0, row["waits_on_aws_p50_s"] or 0.0
    mostly = "the agent's own" if agent_s > aws_s else "waiting on AWS"
    spread = f"from {row['min_s']:g} to {row['max_s']:g} s"
    slow = row.get("slowest_by_state_s") or {}
    if slow and row["max_s"] > 2 * row["p50_s"] + 1.0:
        state, spent = max(slow.items(), key=lambda kv: kv[1])
        spread += f"; the slowest spent {spent:g} s in {state}"
    own, own_s = _largest(row, ("intake", *AGENT_STATES))
    theirs, theirs_s = _largest(row, AWS_STATES)
    line = (
        f"- **{name}**: p50 {row['p50_s']:g} s, p95 {row['p95_s']:g} s "
        f"({row['measured']} of {row['runs']} runs measured, {spread}; "
        f"{', '.join(row['outcomes'])}). "
        f"Mostly {mostly}: the agent's part {agent_s:g} s at the median (most of it "
        f"{own} {own_s:g} s), waiting on AWS {aws_s:g} s (most of it {theirs} {theirs_s:g} s)"
    )
    other = row.get("other_p50_s") or 0.0
    return line + (f"; {other:g} s in neither." if abs(other) >= 0.5 else ".")


def _stops_compared(r: Mapping[str, Any]) -> list[str]:
    rows = r["scenarios"]
    system, person = rows.get(SYSTEM_STOP), rows.get(PERSON_STOP)
    if system is None or person is None or None in (system["p50_s"], person["p50_s"]):
        return []
    sooner = person["p50_s"] - system["p50_s"]
    planning = person["by_state_p50_s"].get("PLANNING", 0.0) - system["by_state_p50_s"].get(
        "PLANNING", 0.0
    )
    facts = r.get("system_stop", {})
    code = facts.get("state_reason_code", "a system code")
    read = (
        f"the agent read the instance's StateReason, {code}, in {facts.get('runs_read', 0)} "
        f"of {system['runs']} runs"
    )
    if sooner >= 1.0:
        return [
            f"A stop by a system fault is recovered in {system['p50_s']:g} s at the median, "
            f"{sooner:.1f} s sooner than a person's stop ({person['p50_s']:g} s); "
            f"{planning:.1f} s of the difference is PLANNING, the wait for a change's author, "
            f"which a person's stop gets and a system's does not ({read})."
        ]
    return [
        f"A stop by a system fault took {system['p50_s']:g} s at the median, no less than a "
        f"person's stop ({person['p50_s']:g} s): it did not skip the wait for an author "
        f"({read})."
    ]


def report_lines(r: Mapping[str, Any]) -> list[str]:
    """The recovery section of docs/BENCHMARKS.md: every sentence from the result's numbers."""
    rows: Mapping[str, Mapping[str, Any]] = r["scenarios"]
    seed = float(r["seed_promise_s"])

    def within(key: str) -> list[str]:
        return [n for n, row in rows.items() if row[key] is not None and row[key] <= seed]

    at_p50, at_p95 = within("p50_s"), within("p95_s")
    changed = r.get("changed_settings") or {}
    settings = "default settings" + (
        " except " + ", ".join(f"{k}={v}" for k, v in changed.items()) if changed else ""
    )
    every = r.get("every_s")
    pace = f", a round started every {every:g} s" if every else ""
    took = f" The run took {r['run_seconds'] / 60:.1f} min." if r.get("run_seconds") else ""
    head = (
        f"{r['rounds']} rounds of {len(rows)} scenarios{pace}, {settings}.{took} The seed "
        f"promised about {seed:g} s: {len(at_p50)} of {len(rows)} scenarios are within it at "
        f"the median ({'; '.join(at_p50) or 'none'}) and {len(at_p95)} at p95."
    )
    table_rows = [
        [
            name,
            ", ".join(row["outcomes"]),
            row["p50_s"],
            row["p95_s"],
            row["agent_p50_s"],
            row["waits_on_aws_p50_s"],
            ", ".join(f"{state} {s:g}" for state, s in row["by_state_p50_s"].items() if s >= 0.5),
        ]
        for name, row in rows.items()
    ]
    return [
        head,
        "",
        *[_scenario_line(name, row) for name, row in rows.items()],
        "",
        *_stops_compared(r),
        "",
        *table(
            [
                "scenario",
                "outcome",
                "p50 s",
                "p95 s",
                "agent's p50 s",
                "waits on AWS p50 s",
                "time by state, p50 s (>= 0.5 s)",
            ],
            table_rows,
        ),
        "",
        f"Method: {r['method']}",
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench recovery")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument(
        "--every", type=float, default=DEFAULT_EVERY_S, help="seconds between round starts"
    )
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.rounds, args.every))
    path = write_result("recovery", result)
    for name, row in result["scenarios"].items():
        print(f"recovery: {name}: p50 {row['p50_s']} s, p95 {row['p95_s']} s {row['outcomes']}")
    print(f"recovery: {result['run_seconds']} s -> {path}")
    return result
