"""docs/BENCHMARKS.md, generated from bench/results/*.json: do not edit it by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import DOCS_FILE, RESULTS_DIR, ratio, read_result
from bench.latency import reading as latency_reading


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "**no**"
        if isinstance(value, float):
            return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value).replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def _machine(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = []
    for name, result in results.items():
        m = result.get("machine", {})
        rows.append(
            [
                name,
                m.get("date"),
                m.get("cpu_count"),
                m.get("cpu_model"),
                m.get("memory_mb"),
                m.get("python"),
                m.get("moto"),
                m.get("load_average_1m"),
            ]
        )
    platform = next(iter(results.values())).get("machine", {}).get("platform", "?")
    return [
        f"Platform: `{platform}`. One moto server process is the emulator for every AWS call. "
        "`load 1m` is the machine's load average when the result was written: other work "
        "sharing the two cores slows every absolute figure, not the calls per event.",
        "",
        *table(
            ["result", "date (UTC)", "CPUs", "CPU", "RAM MiB", "Python", "moto", "load 1m"],
            rows,
        ),
    ]


def _targets(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows: list[list[Any]] = []
    if (p := results.get("pipeline")) is not None:
        extra = round(p["daemon"]["aws_calls"] / max(1, p["floor"]["aws_calls"]), 1)
        why = (
            ""
            if p["targets"]["met"]
            else f"the daemon makes {extra}x the floor's AWS calls; see Pipeline throughput"
        )
        wanted = f">= {p['targets']['ratio_min']}"
        met = p["targets"]["met"]
        rows.append(["daemon / bare floor throughput", wanted, p["ratio"], met, why])
    if (c := results.get("calls")) is not None:
        t = c["targets"]
        normal = c["outcomes"]["normal"]
        met = t["normal_calls_per_event"] <= t["normal_calls_per_event_max"]
        why = ""
        if not met:
            why = (
                f"receives return {normal['messages_per_receive']} messages on average (the "
                "long poll answers as soon as the first messages of a send land), and each "
                "receive's batch is deleted with its own DeleteMessageBatch: 2 calls per "
                "receive; see the calls section"
            )
        rows.append(["NORMAL calls per event", "<= 0.3", t["normal_calls_per_event"], met, why])
        writes = t["normal_dynamodb_writes_per_event"]
        rows.append(["NORMAL DynamoDB writes per event", "0", writes, writes == 0, ""])
    if (m := results.get("memory")) is not None:
        rows.append(["daemon peak RSS (MiB)", "< 120", m["rss_peak_mib"], m["targets"]["met"], ""])
    rows += _log_targets(results)
    return table(["target", "wanted", "measured", "met", "why not"], rows)


def _log_targets(results: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    """Issue 9's targets: grouping accuracy and speed, NAB windows, bytes scanned."""
    rows: list[list[Any]] = []
    if (g := results.get("logmining")) is not None:
        systems = g["systems"]
        for kind in ("content", "raw"):
            below = [
                name
                for name, res in systems.items()
                if res[f"ours_{kind}"]["ga"] < res["published_drain"]
            ]
            avg = g["summary"][f"ours_{kind}_avg_ga"]
            met = not below and avg >= 0.92
            why = f"below published Drain on {', '.join(below)}" if below else ""
            rows.append(
                [
                    f"`logs mine` GA, {kind} (avg; systems >= published)",
                    ">= 0.92; 8/8",
                    f"{avg}; {len(systems) - len(below)}/{len(systems)}",
                    met,
                    why,
                ]
            )
        for kind in ("content", "raw"):
            oof = g["summary"].get(f"ours_{kind}_out_of_fold_avg_ga")
            if oof is not None:  # issue 15: leave-systems-out, bench/logmining_folds.py
                rows.append(
                    [f"`logs mine` GA out of fold, {kind} (avg)", ">= 0.92", oof, oof >= 0.92, ""]
                )
        ours = g["summary"].get("ours_content_lines_per_s")
        theirs = g["summary"].get("drain3_content_lines_per_s")
        if ours and theirs:
            rows.append(
                [
                    "miner speed / drain3 (content, same run)",
                    ">= 1",
                    round(ours / theirs, 2),
                    ours >= theirs,
                    "",
                ]
            )
    if (d := results.get("detect")) is not None:
        o = d["ours"]
        met = o["windows_found"] >= 24 and o["false_episodes_per_day"] <= 0.5
        rows.append(
            [
                "NAB windows found; false episodes/day",
                ">= 24/30; <= 0.5",
                f"{o['windows_found']}/{o['windows']}; {o['false_episodes_per_day']}",
                met,
                "",
            ]
        )
    if (h := results.get("detector_holdout")) is not None:
        from bench.detector_holdout import target_row

        rows.append(target_row(h))
    if (c := results.get("logscan_cost")) is not None:
        rows.append(
            [
                "log bytes scanned/day, seed / ours",
                "> 1",
                c["ratio_seed_over_ours"],
                c["ratio_seed_over_ours"] > 1,
                "",
            ]
        )
    return rows


def _detect(d: Mapping[str, Any]) -> list[str]:
    names = {
        "ours": "ours (default configuration)",
        "seed_ewma": "seed (EWMA alpha 0.3, z > 2)",
        "robust_z_288": "rolling robust z (288, > 5)",
    }
    rows = [
        [
            label,
            f"{d[k]['windows_found']}/{d[k]['windows']}",
            d[k]["false_episodes"],
            d[k]["false_episodes_per_day"],
            d[k]["median_delay_minutes"],
        ]
        for k, label in names.items()
        if k in d
    ]
    rows += [
        [
            f"ours, {label}",
            f"{r['windows_found']}/{r['windows']}",
            r["false_episodes"],
            r["false_episodes_per_day"],
            r["median_delay_minutes"],
        ]
        for label, r in d.get("ours_sweep", {}).items()
    ]
    return [
        "17 NAB realAWSCloudwatch series, one default configuration (labels for scoring only).",
        "",
        *table(
            ["detector", "windows found", "false episodes", "per day", "median delay min"], rows
        ),
        "",
        "Method and discussion: `bench/results/LOGS.md`.",
    ]


def _pipeline(p: Mapping[str, Any]) -> list[str]:
    d, f = p["daemon"], p["floor"]
    return [
        f"{p['events']} events ({_mix(p['mix'])}), at most {p['depth']} messages outstanding.",
        "",
        *table(
            ["", "events/s", "seconds", "AWS calls", "calls/event", "all outcomes right"],
            [
                [
                    "daemon",
                    d["events_per_second"],
                    d["seconds"],
                    d["aws_calls"],
                    round(d["aws_calls"] / d["events"], 2),
                    d["outcomes_ok"],
                ],
                [
                    "bare floor",
                    f["events_per_second"],
                    f["seconds"],
                    f["aws_calls"],
                    round(f["aws_calls"] / f["events"], 2),
                    None,
                ],
            ],
        ),
        "",
        f"Ratio daemon / floor: **{p['ratio']}**{_ratio_spread(p)}. Floor incident writes per "
        f"outcome: {_mix(f['writes_per_outcome'])}; the floor's work checked: "
        f"{_floor_check(f)}.",
        "",
        *_pipeline_reading(d, f),
        "",
        f"Method: {p['method']}",
    ]


def _ratio_spread(p: Mapping[str, Any]) -> str:
    spread = p.get("ratio_spread")
    if not spread:
        return " (one run)"
    orders = ", ".join(f"{r['order']}: {r['ratio']}" for r in p.get("runs_detail", []))
    return f" (median of {p['runs']} runs, min {spread['min']}, max {spread['max']}; {orders})"


def _floor_check(f: Mapping[str, Any]) -> str:
    expected = f.get("expected")
    if not expected:
        return "not checked"
    verdict = "right" if f.get("outcomes_ok") else "**wrong**"
    return (
        f"{verdict} ({f['puts']} writes for {expected['puts']} expected, {f['claims_lost']} "
        f"lost claims for {expected['claims_lost']} duplicates)"
    )


def _pipeline_reading(d: Mapping[str, Any], f: Mapping[str, Any]) -> list[str]:
    """What the two sides' numbers say, worded from the numbers themselves."""
    daemon_rate, floor_rate = _rate(d), _rate(f)
    rates = ratio(daemon_rate, floor_rate)
    calls = ratio(d["aws_calls"] / d["events"], f["aws_calls"] / f["events"])
    if rates is None or calls is None:
        return []
    if abs(rates - 1) <= 0.1:
        pace = "about the same rate: the emulator is the bottleneck of both"
    elif rates < 1:
        pace = f"{rates}x the floor's rate: the daemon also waits on something other than AWS"
    else:
        pace = f"{rates}x the floor's rate"
    by_op = d.get("aws_calls_by_operation", {})
    extra = _extra_operations(by_op, f, d["events"])
    lines = [
        f"The daemon issues AWS calls at {daemon_rate} calls/s, the floor at {floor_rate} "
        f"calls/s ({pace}); the daemon makes {calls}x the floor's calls per event."
        + (f" Its calls beyond the floor's, per event: {extra}." if extra else "")
    ]
    events_ratio = ratio(_events_rate(d), _events_rate(f))
    if events_ratio is not None:
        lines += [
            "",
            f"Were every call to cost the same on the emulator, the ratio would be the inverse "
            f"of the calls per event: {round(1 / calls, 2)}; measured: {events_ratio}. What "
            "each call beyond the floor's pays for:",
            *[
                f"- {op} ({n:.2f} per event): {PRICE_OF.get(op, 'not named here')}"
                for op, n in _beyond(by_op, f, d["events"])
            ],
        ]
    return lines


PRICE_OF: dict[str, str] = {
    "dynamodb:Query": "correlation, one per event that is not normal: a redelivered or "
    "related event joins its incident instead of opening a second one (the same read answers "
    "the planner's history and Spot checks and the policy's earlier tags)",
    "dynamodb:UpdateItem": "two per recovery: the step lease (one recovery of a resource at a "
    "time, never two) and the circuit breaker's count (a mass of destructive incidents stops "
    "autonomous recovery instead of looping)",
    "dynamodb:BatchGetItem": "the circuit breaker's earlier minutes, until they are settled",
    "dynamodb:GetItem": "an incident read again after a lost conditional write",
    "dynamodb:PutItem": "a claim of an incident resumed by the sweeper",
    "sns:Publish": "the notification of every recovery and every review (the floor sends none)",
    "tagging:GetResources": "the resource's tags, one per incident opened: how much the agent "
    "may do (aiops:autonomy and the operators' tag rules)",
    "sts:GetCallerIdentity": "the account, for account-wide rules (until it is known)",
    "cloudtrail:DescribeTrails": "start-up: whether a trail names the authors of changes",
    "sqs:GetQueueUrl": "start-up",
    "sqs:GetQueueAttributes": "start-up: the queue's redrive policy",
    "sqs:ReceiveMessage": "receives with fewer messages than the floor's",
    "sqs:DeleteMessageBatch": "deletes of smaller batches than the floor's",
    "sqs:ChangeMessageVisibility": "a message handed back for a later retry",
}
"""What each operation the daemon makes beyond the floor's is for: the promise it keeps."""


def _events_rate(side: Mapping[str, Any]) -> float:
    return side["events"] / side["seconds"] if side["seconds"] else 0.0


def _beyond(
    by_op: Mapping[str, float], f: Mapping[str, Any], events: int
) -> list[tuple[str, float]]:
    """Per event, the daemon's operations beyond the floor's (receives, deletes, writes),
    most first; those under 0.005 per event left out."""
    floor_ops = {
        "sqs:ReceiveMessage": f.get("receives", 0),
        "sqs:DeleteMessageBatch": f.get("deletes", 0),
        "dynamodb:TransactWriteItems": f.get("puts", 0),
    }
    beyond = {
        op: (n - floor_ops.get(op, 0)) / events
        for op, n in by_op.items()
        if n - floor_ops.get(op, 0) > 0
    }
    ranked = sorted(beyond.items(), key=lambda kv: -kv[1])
    return [(op, n) for op, n in ranked if n >= 0.005]


def _extra_operations(by_op: Mapping[str, float], f: Mapping[str, Any], events: int) -> str:
    return ", ".join(f"{op} {n:.2f}" for op, n in _beyond(by_op, f, events))


def _rate(side: Mapping[str, Any]) -> float:
    return round(side["aws_calls"] / side["seconds"], 1) if side["seconds"] else 0.0


def _mix(mix: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mix.items())


def _calls(c: Mapping[str, Any]) -> list[str]:
    rows = []
    for kind, o in c["outcomes"].items():
        top = ", ".join(f"{op} {n:g}" for op, n in o["by_operation"].items())
        rows.append(
            [
                kind,
                o["calls_per_event"],
                o["dynamodb_writes_per_event"],
                o["messages_per_receive"],
                o["log_bytes_per_event"],
                o["outcome_ok"],
                top,
            ]
        )
    return [
        *table(
            [
                "outcome",
                "calls/event",
                "DynamoDB writes/event",
                "msgs/receive",
                "log bytes/event",
                "outcome right",
                "calls by operation, per event",
            ],
            rows,
        ),
        "",
        f"Method: {c['method']}",
    ]


def _latency(lat: Mapping[str, Any]) -> list[str]:
    rows = []
    for run in lat["runs"]:
        s = run["latency_s"]
        q = run["queue_lag_s"]
        rows.append(
            [
                run["rate_target"],
                run["rate_sent"],
                run["events"],
                s.get("p50"),
                s.get("p99"),
                q.get("p50"),
                q.get("p99"),
                run["max_backlog"],
                run["above_emulator_ceiling"],
                run.get("feeder_short_of_target"),
            ]
        )
    return [
        *table(
            [
                "target/s",
                "sent/s",
                "events",
                "p50 s",
                "p99 s",
                "queue lag p50 s",
                "queue lag p99 s",
                "max backlog",
                "sent above emulator ceiling",
                "sent short of target",
            ],
            rows,
        ),
        "",
        latency_reading(lat["runs"]),
        "",
        f"Method: {lat['method']}",
    ]


def _memory(m: Mapping[str, Any]) -> list[str]:
    return [
        *table(
            ["idle MiB", "after the run MiB", "peak MiB", "target MiB"],
            [
                [
                    m["rss_idle_mib"],
                    m["rss_after_mib"],
                    m["rss_peak_mib"],
                    m["targets"]["rss_max_mib"],
                ]
            ],
        ),
        "",
        f"Method: {m['method']}",
    ]


def _cost(c: Mapping[str, Any]) -> list[str]:
    scenarios = c["scenarios"]
    names = list(scenarios)
    items = [x["item"] for x in scenarios[names[0]]["lines"]]
    rows: list[list[Any]] = []
    for i, item in enumerate(items):
        rows.append([item, *(scenarios[n]["lines"][i]["dollars"] for n in names)])
    rows.append(["**total, $/month**", *(scenarios[n]["total_dollars_per_month"] for n in names)])
    rows.append(
        [
            "seed's Logs Insights schedule (for comparison)",
            *(scenarios[n]["seed_logs_insights_dollars"] for n in names),
        ]
    )
    for key, label in (
        ("events_dollars", "+ Bedrock analyzer on every event (AIOPS_ANALYZER=bedrock)"),
        ("log_anomalies_dollars", "+ Bedrock on log anomalies only (ours)"),
        ("seed_log_calls_dollars", "seed: Bedrock per log group per poll"),
    ):
        rows.append([label, *(scenarios[n]["with_bedrock_analyzer"][key] for n in names)])
    events = [f"{n} ({scenarios[n]['events_per_day']:,.0f} events/day)" for n in names]
    return [
        *table(["$ per month", *events], rows),
        "",
        f"Assumptions: {c['volume_notes']}",
        "",
        f"Prices: {c['price_notes']} " + ", ".join(f"{k} ${v}" for k, v in c["prices"].items()),
    ]


def _generic(result: Mapping[str, Any]) -> list[str]:
    """Another module's result: its own `summary`/`markdown` if it has one, else its scalars."""
    for key in ("markdown", "summary_markdown"):
        if isinstance(result.get(key), str):
            return [str(result[key])]
    shown = {
        k: v
        for k, v in result.items()
        if k not in ("machine", "benchmark") and not isinstance(v, dict | list)
    }
    extra = result.get("summary")
    if isinstance(extra, dict):
        shown.update({k: v for k, v in extra.items() if not isinstance(v, dict | list)})
    if not shown:
        return ["See the result file."]
    return table(["figure", "value"], [[k, v] for k, v in shown.items()])


def _recovery(r: Mapping[str, Any]) -> list[str]:
    from bench.recovery import report_lines

    return report_lines(r)


def _holdout(h: Mapping[str, Any]) -> list[str]:
    from bench.detector_holdout import report_lines

    return report_lines(dict(h))


SECTIONS = (
    ("pipeline", "Pipeline throughput", _pipeline),
    ("calls", "AWS API calls per event, by outcome", _calls),
    ("latency", "End-to-end latency", _latency),
    ("memory", "Memory", _memory),
    ("cost", "Cost model", _cost),
    ("recovery", "Time to recovery", _recovery),
    ("detect", "Anomaly detection", _detect),
    ("detector_holdout", "Anomaly detection on NAB groups it was not tuned on", _holdout),
)
OTHERS = (
    ("logmining", "Log template mining"),
    ("logscan_cost", "Log scan cost"),
)


class MixedCommits(ValueError):
    """The results were measured on different code: one report must not mix them."""


def commit_of(result: Mapping[str, Any]) -> str:
    """The commit a result was measured on (`unknown` for results that predate recording it),
    with `+dirty` when the code measured differed from that commit."""
    code = result.get("code") or {}
    commit = str(code.get("commit") or "unknown")
    return f"{commit}+dirty" if code.get("dirty") else commit


def check_one_commit(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The one commit every result was measured on; MixedCommits names them otherwise."""
    commits = {name: commit_of(result) for name, result in results.items()}
    distinct = set(commits.values())
    if len(distinct) != 1 or any(c.startswith("unknown") or c.endswith("+dirty") for c in distinct):
        listed = ", ".join(
            f"{name} {commit[:12]}{'+dirty' if commit.endswith('+dirty') else ''}"
            for name, commit in sorted(commits.items())
        )
        raise MixedCommits(
            "the results were not all measured on one clean commit "
            f"({listed}): rerun them with `python -m bench` on one commit"
        )
    return distinct.pop()


def render(directory: Path = RESULTS_DIR) -> str:
    results: dict[str, dict[str, Any]] = {}
    for name in [s[0] for s in SECTIONS] + [o[0] for o in OTHERS]:
        found = read_result(name, directory)
        if found is not None:
            results[name] = found
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (or `make bench`) from `bench/results/*.json`; do not",
        "edit by hand. The emulator (moto) is the bottleneck of every throughput figure here,",
        "so compare the daemon with the bare floor measured beside it, not with real AWS.",
        "",
    ]
    if not results:
        return "\n".join([*lines, "No results yet: run `python -m bench`.", ""])
    commit = check_one_commit(results)
    lines += [f"Every result below was measured on commit `{commit}`.", ""]
    lines += ["## Machine", "", *_machine(results), "", "## Targets", "", *_targets(results), ""]
    for name, title, render_section in SECTIONS:
        if name in results:
            lines += [f"## {title}", "", *render_section(results[name]), ""]
    for name, title in OTHERS:
        if name in results:
            lines += [
                f"## {title}",
                "",
                *_generic(results[name]),
                "",
                f"Details: `bench/results/{name}.json`.",
                "",
            ]
    return "\n".join(lines)


def write_report(path: Path = DOCS_FILE, directory: Path = RESULTS_DIR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(directory))
    return path
