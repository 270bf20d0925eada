"""Cost model: US dollars per month at an assumed volume and at 100x it.

Per-event figures come from the measured calls (calls.json: AWS calls, incident item sizes and
log bytes per event, by outcome); fixed costs (idle long polls, the sweeper's queries, the log
analyzer, the Fargate task) from the daemon's settings. Every price and every assumption is
written into the result. Public us-east-1 list prices, free tiers ignored.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import read_result, write_result

DAYS_PER_MONTH = 30.4
SCALES = (1, 100)

PRICES: dict[str, float] = {
    "sqs_per_million_requests": 0.40,
    "dynamodb_per_million_write_units": 1.25,
    "dynamodb_per_million_read_units": 0.25,
    "dynamodb_storage_per_gb_month": 0.25,
    "sns_per_million_publishes": 0.50,
    "logs_insights_per_gb_scanned": 0.005,
    "logs_ingestion_per_gb": 0.50,
    "codebuild_general1_small_per_minute": 0.005,
    "bedrock_claude_3_5_sonnet_input_per_1k_tokens": 0.003,
    "bedrock_claude_3_5_sonnet_output_per_1k_tokens": 0.015,
    "fargate_per_vcpu_hour": 0.04048,
    "fargate_per_gb_hour": 0.004445,
}
PRICE_NOTES = (
    "us-east-1 list prices, free tiers ignored. DynamoDB on-demand at $1.25/M write and "
    "$0.25/M read request units as given in the brief; AWS halved on-demand throughput prices "
    "in November 2024 ($0.625/M, $0.125/M), so the DynamoDB lines are conservative by 2x. "
    "EventBridge delivery of AWS service events to rules is free. SNS deliveries (e-mail, "
    "HTTPS) are billed per subscriber and are not included, only publishes."
)

VOLUME: dict[str, float] = {
    "events_per_day": 10_000,
    "recoveries_per_day": 50,
    "manual_reviews_per_day": 5,
    "duplicate_deliveries_per_day": 100,
    "replicas": 2,
    "receive_wait_seconds": 20,
    "sweep_seconds": 10,
    "log_groups": 10,
    "log_gb_ingested_per_group_per_day": 1.0,
    "log_poll_minutes": 5,
    "log_scan_overlap": 0.02,
    "seed_log_rescan_factor": 12,
    "log_analyzer_reads_per_poll": 2,
    "log_analyzer_writes_per_poll": 3,
    "log_anomalies_per_day": 5,
    "iac_share_of_recoveries": 0.1,
    "codebuild_minutes_per_restore": 3,
    "model_output_tokens_per_call": 250,
    "fargate_vcpu_per_replica": 0.25,
    "fargate_gb_per_replica": 0.5,
    "incident_ttl_days": 90,
    "gsi_write_factor": 4,
}
VOLUME_NOTES = (
    "Assumed, not measured: the seed states no volume. 10,000 EventBridge events a day reach "
    "the queue, of which 50 need a recovery, 5 go to manual review, 100 are duplicate "
    "deliveries and the rest are NORMAL; two replicas (each idle-polls with 20 s long polls and "
    "sweeps every 10 s); 10 log groups of 1 GB/day each, polled every 5 minutes, our analyzer "
    "scanning each byte once (+2 % overlap), the seed re-scanning the last hour every 5 minutes "
    "(12x); the log analyzer does 2 reads and 3 writes in the patterns table per group and poll; "
    "10 % of recoveries are IaC restores of 3 CodeBuild minutes; every incident write costs its "
    "size in KB on the table and on about 3 more index copies (gsi_write_factor 4: the indexes "
    "project ALL attributes); Fargate 0.25 vCPU / 0.5 GB per replica. 100x scales the event, "
    "recovery and log volumes, not the replicas."
)


def outcome_mix(volume: Mapping[str, float]) -> dict[str, float]:
    """Events per day by outcome."""
    recovered = volume["recoveries_per_day"]
    review = volume["manual_reviews_per_day"]
    duplicate = volume["duplicate_deliveries_per_day"]
    normal = max(0.0, volume["events_per_day"] - recovered - review - duplicate)
    return {"normal": normal, "duplicate": duplicate, "recovered": recovered, "review": review}


def daily_operations(
    outcomes: Mapping[str, Mapping[str, Any]], mix: Mapping[str, float]
) -> dict[str, float]:
    """`service:Operation` -> calls per day, from per-event calls by outcome and the mix."""
    ops: dict[str, float] = {}
    for kind, per_day in mix.items():
        for op, per_event in outcomes.get(kind, {}).get("by_operation", {}).items():
            ops[op] = ops.get(op, 0.0) + per_day * float(per_event)
    return ops


def write_units(item_bytes: float, gsi_factor: float) -> float:
    """Write request units of one PutItem of `item_bytes` (1 KB units) with its index copies."""
    return math.ceil(max(item_bytes, 1) / 1024) * gsi_factor


def model_input_tokens() -> int:
    """Input tokens of one Bedrock analysis of an EC2 event (characters / 4, the usual rule)."""
    try:
        from aiops_agent.actions.registry import CATALOG, load_builtin_actions
        from aiops_agent.analysis.prompt import SYSTEM_PROMPT, user_message
        from aiops_agent.analysis.schema import tool_config
        from aiops_agent.intake.envelope import parse_event
        from bench.common import ec2_event

        load_builtin_actions()
        specs = CATALOG.for_resource("ec2")
        event = parse_event(json.dumps(ec2_event("i-0123456789abcdef0", "stopped")))[0]
        text = (
            SYSTEM_PROMPT
            + user_message(event, specs)
            + json.dumps(tool_config([s.name for s in specs]))
        )
        return len(text) // 4
    except Exception:
        return 1100


def line(item: str, quantity: float, unit: str, price: float, per: float = 1.0) -> dict[str, Any]:
    return {
        "item": item,
        "quantity_per_month": round(quantity, 3),
        "unit": unit,
        "unit_price": price,
        "dollars": round(quantity * price / per, 4),
    }


class UnpricedOperation(ValueError):
    """calls.json holds a DynamoDB operation the model has no price rule for."""


CLOSING_WRITES: dict[str, float] = {"recovered": 1.0}
"""Writes per event that close an incident and carry its lease's Delete (a recovered incident
closes once; the other outcomes of the mix are not closed by a transaction here)."""


def dynamodb_units(
    calls: Mapping[str, Any], mix: Mapping[str, float], gsi_factor: float
) -> dict[str, float]:
    """Write and read request units per day of every DynamoDB call in calls.json.

    Priced per operation from what it carries, not from a list of the operations the daemon
    used to make: an incident write (PutItem, or a TransactWriteItems with the incident and
    its new audit entries, each transactional unit doubled) costs the stored incident's size
    on the table and its index copies; UpdateItem and DeleteItem touch the small lease and
    breaker items (one unit); a failed conditional write is billed like a successful one.
    Reads: GetItem strongly consistent (one unit per 4 KB of the incident), Query and
    BatchGetItem eventually consistent small reads. An operation without a rule is an error,
    so a new call cannot go unpriced.
    """
    sizes = calls.get("incident_item_sizes", {})
    fallback = float(sizes.get("COMPLETED", {}).get("mean_bytes", 0))
    audit = calls.get("audit_item_sizes", {})
    audit_bytes = float(audit.get("mean_bytes", 0))
    outcomes = calls.get("outcomes", {})
    transactions = sum(
        float(o.get("by_operation", {}).get("dynamodb:TransactWriteItems", 0.0))
        * float(o.get("events", 0))
        for o in outcomes.values()
    )
    audit_per_transaction = float(audit.get("count", 0)) / transactions if transactions else 0.0
    state_of = {"review": "AWAITING_APPROVAL"}
    write = read = 0.0
    for kind, per_day in mix.items():
        incident = float(sizes.get(state_of.get(kind, "COMPLETED"), {}).get("mean_bytes", 0))
        incident = incident or fallback
        put = write_units(incident, gsi_factor)
        for op, per_event in outcomes.get(kind, {}).get("by_operation", {}).items():
            service, name = op.split(":", 1)
            if service != "dynamodb":
                continue
            n = per_day * float(per_event)
            if name == "PutItem":
                write += n * put
            elif name == "TransactWriteItems":
                entries = audit_per_transaction * write_units(audit_bytes, 1)
                write += n * 2 * (put + entries)
                # The write that closes an incident deletes its step lease in the same
                # transaction: a small item, doubled like every transactional unit.
                write += per_day * CLOSING_WRITES.get(kind, 0.0) * 2
            elif name in ("UpdateItem", "DeleteItem"):
                write += n
            elif name == "GetItem":
                read += n * math.ceil(max(incident, 1) / 4096)
            elif name in ("Query", "BatchGetItem"):
                read += n * 0.5
            else:
                raise UnpricedOperation(f"no price rule for dynamodb:{name} in calls.json")
    return {"write": write, "read": read}


def monthly_lines(
    calls: Mapping[str, Any],
    volume: Mapping[str, float],
    prices: Mapping[str, float],
    scale: float = 1.0,
) -> list[dict[str, Any]]:
    """The bill, line by line, at `scale` times `volume` (replicas not scaled)."""
    v = {
        k: (x * scale if k.endswith("_per_day") or k.startswith("log_gb") else x)
        for k, x in volume.items()
    }
    month = DAYS_PER_MONTH
    mix = outcome_mix(v)
    outcomes = calls.get("outcomes", {})
    ops = daily_operations(outcomes, mix)
    sizes = calls.get("incident_item_sizes", {})
    if "COMPLETED" not in sizes:
        raise ValueError("calls.json has no stored COMPLETED incident size: rerun bench calls")
    completed = float(sizes["COMPLETED"]["mean_bytes"])
    awaiting = float(sizes.get("AWAITING_APPROVAL", {}).get("mean_bytes", completed))
    replicas = v["replicas"]

    def op(name: str) -> float:
        return ops.get(name, 0.0)

    sqs = sum(n for k, n in ops.items() if k.startswith("sqs:"))
    sqs += v["events_per_day"]  # EventBridge's SendMessage into the queue
    sqs += replicas * 86400 / v["receive_wait_seconds"]  # idle long polls, an upper bound
    units = dynamodb_units(calls, mix, v["gsi_write_factor"])
    polls = v["log_groups"] * 1440 / v["log_poll_minutes"]
    sweeps = replicas * 86400 / v["sweep_seconds"]
    wru = units["write"] + polls * v["log_analyzer_writes_per_poll"]
    rru = units["read"] + sweeps * 0.5 + polls * v["log_analyzer_reads_per_poll"] * 0.5
    stored_gb = (
        (mix["recovered"] * completed + mix["review"] * awaiting) * v["incident_ttl_days"] / 1e9
    )
    log_bytes = sum(mix[k] * float(outcomes.get(k, {}).get("log_bytes_per_event", 0)) for k in mix)
    scanned = v["log_groups"] * v["log_gb_ingested_per_group_per_day"] * (1 + v["log_scan_overlap"])
    builds = mix["recovered"] * v["iac_share_of_recoveries"] * v["codebuild_minutes_per_restore"]
    hours = 24 * month * replicas
    return [
        line("SQS requests", sqs * month, "requests", prices["sqs_per_million_requests"], 1e6),
        line(
            "DynamoDB writes", wru * month, "WRU", prices["dynamodb_per_million_write_units"], 1e6
        ),
        line("DynamoDB reads", rru * month, "RRU", prices["dynamodb_per_million_read_units"], 1e6),
        line("DynamoDB storage", stored_gb, "GB-month", prices["dynamodb_storage_per_gb_month"]),
        line(
            "SNS publishes",
            op("sns:Publish") * month,
            "publishes",
            prices["sns_per_million_publishes"],
            1e6,
        ),
        line(
            "Logs Insights scanned", scanned * month, "GB", prices["logs_insights_per_gb_scanned"]
        ),
        line(
            "agent's own logs ingested",
            log_bytes / 1e9 * month,
            "GB",
            prices["logs_ingestion_per_gb"],
        ),
        line(
            "CodeBuild IaC restores",
            builds * month,
            "build minutes",
            prices["codebuild_general1_small_per_minute"],
        ),
        line(
            "Bedrock (default analyzer: rules)",
            0.0,
            "1K tokens",
            prices["bedrock_claude_3_5_sonnet_input_per_1k_tokens"],
        ),
        line(
            "Fargate vCPU",
            hours * v["fargate_vcpu_per_replica"],
            "vCPU-hours",
            prices["fargate_per_vcpu_hour"],
        ),
        line(
            "Fargate memory",
            hours * v["fargate_gb_per_replica"],
            "GB-hours",
            prices["fargate_per_gb_hour"],
        ),
    ]


def bedrock_option(
    volume: Mapping[str, float], prices: Mapping[str, float], scale: float, input_tokens: int
) -> dict[str, Any]:
    """What AIOPS_ANALYZER=bedrock adds: one Converse call per event (no cache hits assumed)
    and one per log anomaly; beside it the seed's model call per log group and poll."""
    out_tokens = volume["model_output_tokens_per_call"]
    per_call = (
        input_tokens / 1000 * prices["bedrock_claude_3_5_sonnet_input_per_1k_tokens"]
        + out_tokens / 1000 * prices["bedrock_claude_3_5_sonnet_output_per_1k_tokens"]
    )
    events = volume["events_per_day"] * scale
    anomalies = volume["log_anomalies_per_day"] * scale
    seed_calls = volume["log_groups"] * 1440 / volume["log_poll_minutes"]
    return {
        "input_tokens_per_call": input_tokens,
        "output_tokens_per_call": out_tokens,
        "dollars_per_call": round(per_call, 6),
        "events_dollars": round(events * per_call * DAYS_PER_MONTH, 2),
        "log_anomalies_dollars": round(anomalies * per_call * DAYS_PER_MONTH, 2),
        "seed_log_calls_dollars": round(seed_calls * per_call * DAYS_PER_MONTH, 2),
    }


def with_measured_scan(
    volume: Mapping[str, float], logscan: Mapping[str, Any] | None
) -> tuple[dict[str, float], str]:
    """The volume with the scan factors the log analyzer really showed (logscan_cost.json:
    bytes scanned over bytes ingested, ours and the seed's schedule), where there is one."""
    v = dict(volume)
    if not logscan or "scan_factor" not in logscan.get("ours", {}):
        return v, "assumed (no bench/results/logscan_cost.json)"
    v["log_scan_overlap"] = round(float(logscan["ours"]["scan_factor"]) - 1, 4)
    v["seed_log_rescan_factor"] = float(logscan["seed"]["scan_factor"])
    return v, "measured: bench/results/logscan_cost.json (the analyzer over a simulated day)"


def model(
    calls: Mapping[str, Any],
    volume: Mapping[str, float] = VOLUME,
    logscan: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    volume, scan_source = with_measured_scan(volume, logscan)
    tokens = model_input_tokens()
    scenarios: dict[str, Any] = {}
    for scale in SCALES:
        lines = monthly_lines(calls, volume, PRICES, scale)
        v = volume
        ours = v["log_groups"] * v["log_gb_ingested_per_group_per_day"] * scale
        seed_scan = ours * v["seed_log_rescan_factor"]
        scenarios[f"{scale}x"] = {
            "events_per_day": v["events_per_day"] * scale,
            "lines": lines,
            "total_dollars_per_month": round(sum(x["dollars"] for x in lines), 2),
            "seed_logs_insights_dollars": round(
                seed_scan * DAYS_PER_MONTH * PRICES["logs_insights_per_gb_scanned"], 2
            ),
            "with_bedrock_analyzer": bedrock_option(v, PRICES, scale, tokens),
        }
    return {
        "log_scan_factors": scan_source,
        "prices": PRICES,
        "price_notes": PRICE_NOTES,
        "volume": dict(volume),
        "volume_notes": VOLUME_NOTES,
        "days_per_month": DAYS_PER_MONTH,
        "calls_source": "bench/results/calls.json (measured)",
        "scenarios": scenarios,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argparse.ArgumentParser(prog="python -m bench cost").parse_args(argv)
    calls = read_result("calls")
    if calls is None:
        raise SystemExit("bench cost: bench/results/calls.json is missing: python -m bench calls")
    result = model(calls, logscan=read_result("logscan_cost"))
    path = write_result("cost", result)
    for name, scenario in result["scenarios"].items():
        print(f"cost {name}: ${scenario['total_dollars_per_month']}/month")
    print(f"cost -> {path}")
    return result
