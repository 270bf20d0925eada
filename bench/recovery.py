"""Time to recovery: from the event's time to the verified outcome, per scenario, with the
production daemon and its default settings, on the emulator.

For each scenario a real resource is made on the emulator and broken the way the demo breaks it
(demo/scenarios.py: an instance stopped by a person, an instance terminated, a Lambda function
deleted, a parameter overwritten) or opened to the world (a security group rule for 0.0.0.0/0);
the events AWS would emit go through EventBridge to the queue, and `aiops-agent run` (a child
process, default settings: the real action catalog, the 120 s wait for a change's author, the
default verify interval) takes them. The demo's Terraform stand-in plays CodeBuild's part for
IaC restores, as in the demo. Each scenario runs `--rounds` times on fresh resources, all
scenarios of a round at once.

Measured from the incident's own record: the time from the event's `time` (taken by this
process just before PutEvents, at microsecond resolution) to the terminal timeline entry, and
the time spent in each state (the gap between consecutive timeline entries, charged to the
earlier one). The report says which part waits on AWS (EXECUTING: the API call or the build;
VERIFYING: the resource coming up and the verify interval) and which is the agent's own
(reaching the queue and being read, analysis, planning, the deliberate wait for an author).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiops_agent.app import build_store
from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.iac import play_terraform
from aiops_agent.demo.scenarios import SCENARIOS, prepare_function, prepare_parameter
from aiops_agent.domain.models import Incident
from aiops_agent.domain.ports import IncidentStore
from bench.common import LOG_DIR, percentile, write_result
from bench.harness import agent, stack

SEED_PROMISE_S = 25.0
"""The seed's README: a stopped instance back in about 25 seconds."""
DEFAULT_ROUNDS = 3
DEADLINE_S = 600.0
AGENT_STATES = ("RECEIVED", "ANALYZING", "PLANNING")
AWS_STATES = ("EXECUTING", "VERIFYING")
ACCOUNT = "123456789012"

Act = Callable[[AwsClients, dict[str, str]], Awaitable[list[dict[str, Any]]]]
Prepare = Callable[[AwsClients], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Case:
    """A scenario of the benchmark: the demo's, or one of its own."""

    name: str
    prepare: Prepare
    act: Act
    key: str


async def _prepare_group(clients: AwsClients) -> dict[str, str]:
    ec2 = await clients.client("ec2")
    made = await ec2.create_security_group(
        GroupName=f"bench-open-{time.monotonic_ns()}", Description="recovery benchmark"
    )
    return {"group_id": made["GroupId"]}


async def _open_group(clients: AwsClients, res: dict[str, str]) -> list[dict[str, Any]]:
    ec2 = await clients.client("ec2")
    permission = {
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    }
    await ec2.authorize_security_group_ingress(GroupId=res["group_id"], IpPermissions=[permission])
    params = {
        "groupId": res["group_id"],
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                }
            ]
        },
    }
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory",
            "accountId": ACCOUNT,
        },
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupIngress",
        "awsRegion": clients.region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": params,
        "responseElements": None,
        "eventID": f"bench-{time.monotonic_ns()}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    return [
        {
            "Source": "aws.ec2",
            "DetailType": "AWS API Call via CloudTrail",
            "Detail": json.dumps(detail),
        }
    ]


def _fresh(prepare: Callable[[AwsClients, str], Awaitable[dict[str, str]]], stem: str) -> Prepare:
    """A demo scenario's resource under a new name each round: a name used in an earlier round
    would be in its cooldown, and the demo's function and parameter names are fixed."""

    async def prepared(clients: AwsClients) -> dict[str, str]:
        return await prepare(clients, f"{stem}-{uuid.uuid4().hex[:8]}")

    return prepared


def cases() -> list[Case]:
    """Every recovery the demo shows (not the trusted pipeline's stop, which is not recovered),
    and a world-open security group rule. Instances are new in every round anyway."""
    demo = {s.title: s for s in SCENARIOS}
    stopped = demo["EC2 instance stopped by hand"]
    terminated = demo["EC2 instance terminated (CloudTrail call + state change: one incident)"]
    deleted = demo["Lambda function deleted"]
    tampered = demo["SSM parameter overwritten"]
    return [
        Case("instance stopped by a person", stopped.prepare, stopped.act, stopped.key),
        Case("instance terminated", terminated.prepare, terminated.act, terminated.key),
        Case(
            "function deleted",
            _fresh(prepare_function, "bench-orders-api"),
            deleted.act,
            deleted.key,
        ),
        Case(
            "parameter tampered",
            _fresh(prepare_parameter, "/bench/payments/db-host"),
            tampered.act,
            tampered.key,
        ),
        Case("security group opened to the world", _prepare_group, _open_group, "group_id"),
    ]


def state_durations(incident: Incident) -> dict[str, float]:
    """Seconds spent in each state, from the gaps between consecutive timeline entries."""
    spent: dict[str, float] = {}
    entries = incident.timeline
    for before, after in itertools.pairwise(entries):
        state = before.state.value
        spent[state] = spent.get(state, 0.0) + (after.at - before.at).total_seconds()
    return spent


def measure_incident(incident: Incident, event_at: datetime) -> dict[str, Any]:
    """What one recovery took, from the event's time, and where the time went."""
    end = incident.timeline[-1].at if incident.timeline else incident.updated_at
    spent = state_durations(incident)
    intake = (incident.created_at - event_at).total_seconds()
    agent_s = intake + sum(spent.get(s, 0.0) for s in AGENT_STATES)
    aws_s = sum(spent.get(s, 0.0) for s in AWS_STATES)
    return {
        "outcome": incident.workflow_state.value,
        "seconds": round((end - event_at).total_seconds(), 3),
        "intake_s": round(intake, 3),
        "by_state_s": {k: round(v, 3) for k, v in spent.items()},
        "agent_s": round(agent_s, 3),
        "waits_on_aws_s": round(aws_s, 3),
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
        await asyncio.sleep(1.0)
    return found


async def run_round(
    clients: AwsClients, store: IncidentStore, chosen: Sequence[Case], within: float
) -> dict[str, dict[str, Any]]:
    events = await clients.client("events")
    prepared = [(case, await case.prepare(clients)) for case in chosen]
    event_at: dict[str, datetime] = {}
    keys: dict[str, str] = {}
    for case, res in prepared:
        entries = await case.act(clients, res)
        rid = res[case.key]
        event_at[rid] = datetime.now(UTC)
        answer = await events.put_events(Entries=entries)
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {answer['Entries']}")
        keys[rid] = f"{_type(case)}:{clients.region}:{rid}"
    done = await _wait_terminal(store, keys, within)
    out: dict[str, dict[str, Any]] = {}
    for case, res in prepared:
        rid = res[case.key]
        incident = done.get(rid)
        out[case.name] = (
            measure_incident(incident, event_at[rid])
            if incident is not None
            else {"outcome": "none within the deadline", "seconds": None}
        )
    return out


def _type(case: Case) -> str:
    return {"function_name": "lambda", "parameter": "ssm"}.get(case.key, "ec2")


def aggregate(rounds: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Per scenario: p50/p95 of the total, the medians of the parts, the outcomes seen."""
    table: dict[str, Any] = {}
    for name in rounds[0]:
        runs = [r[name] for r in rounds]
        totals = [float(r["seconds"]) for r in runs if r.get("seconds") is not None]
        states = sorted({s for r in runs for s in r.get("by_state_s", {})})
        table[name] = {
            "runs": len(runs),
            "outcomes": sorted({str(r["outcome"]) for r in runs}),
            "p50_s": round(percentile(totals, 50), 2) if totals else None,
            "p95_s": round(percentile(totals, 95), 2) if totals else None,
            "intake_p50_s": _median(runs, "intake_s"),
            "agent_p50_s": _median(runs, "agent_s"),
            "waits_on_aws_p50_s": _median(runs, "waits_on_aws_s"),
            "by_state_p50_s": {
                s: round(statistics.median(r["by_state_s"].get(s, 0.0) for r in runs), 2)
                for s in states
            },
        }
    return table


def _median(runs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


async def measure(rounds: int = DEFAULT_ROUNDS) -> dict[str, Any]:
    chosen = cases()
    results: list[dict[str, dict[str, Any]]] = []
    async with stack("recovery") as stack_:
        # The production daemon, default settings but for where AWS is.
        defaults = {"AIOPS_BREAKER_THRESHOLD": "", "AIOPS_ATTRIBUTION_GRACE_SECONDS": ""}
        async with (
            agent(stack_, LOG_DIR / "recovery-agent.log", module="aiops_agent", **defaults),
            AwsClients(endpoint_url=stack_.endpoint, max_attempts=3) as clients,
        ):
            store = build_store(stack_.settings, clients)
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(play_terraform(clients, store, stop))
                try:
                    for _ in range(rounds):
                        results.append(await run_round(clients, store, chosen, DEADLINE_S))
                finally:
                    stop.set()
    return {
        "rounds": rounds,
        "seed_promise_s": SEED_PROMISE_S,
        "scenarios": aggregate(results),
        "runs_detail": results,
        "method": (
            "aiops-agent run as a child process with default settings (only the endpoint, "
            "queue, tables and topic set) on one moto server; per round every scenario's "
            "resource is made, broken, and its events put through EventBridge; the time is "
            "from just before PutEvents to the incident's terminal timeline entry. agent_s = "
            "intake (event to incident created: EventBridge, SQS, the receive) + RECEIVED, "
            "ANALYZING and PLANNING (including the wait for a change's author); "
            "waits_on_aws_s = EXECUTING + VERIFYING (the call or the build, the resource "
            "coming up, the verify interval)."
        ),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench recovery")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.rounds))
    path = write_result("recovery", result)
    for name, row in result["scenarios"].items():
        print(f"recovery: {name}: p50 {row['p50_s']} s, p95 {row['p95_s']} s {row['outcomes']}")
    print(f"recovery -> {path}")
    return result
