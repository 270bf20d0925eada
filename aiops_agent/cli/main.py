"""The `aiops-agent` command line (CONTRACT.md names every command and flag)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiops_agent import __version__
from aiops_agent.settings import Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiops-agent",
        description="An AIOps agent for AWS: EventBridge events in, verified recoveries out.",
    )
    parser.add_argument("--version", action="version", version=f"aiops-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="the daemon: SQS consumer, workflow engine, sweeper, HTTP server")

    demo = sub.add_parser("demo", help="the one-command tour on an embedded AWS emulator")
    demo.add_argument("--json", action="store_true", help="print only the incidents as JSON")
    demo.add_argument("--keep-running", action="store_true", help="leave the daemon up")
    demo.add_argument(
        "--analyzer",
        choices=["rules", "bedrock"],
        default="rules",
        help="bedrock: ask a local fake Bedrock endpoint (the Converse wire format) as the model",
    )

    boot = sub.add_parser("bootstrap", help="create the queue, rules, tables, topic, project")
    boot.add_argument("--json", action="store_true")

    explain = sub.add_parser("explain", help="judge one event file without acting on it")
    explain.add_argument("event_file", metavar="EVENT.json")
    explain.add_argument("--json", action="store_true")
    explain.add_argument("--analyzer", choices=["rules", "bedrock"], default=None)

    send = sub.add_parser("send-event", help="put an event onto the queue")
    send.add_argument("event_file", metavar="EVENT.json")
    send.add_argument("--via-eventbridge", action="store_true", help="through PutEvents")

    logs = sub.add_parser("logs", help="offline log analysis")
    lsub = logs.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    mine = lsub.add_parser("mine", help="template mining of a log file")
    mine.add_argument("file", metavar="FILE")
    mine.add_argument("--jsonl", action="store_true", help="one JSON object per input line")

    detect = sub.add_parser("detect", help="the log analyzer's anomaly detector over a CSV")
    detect.add_argument("file", metavar="SERIES.csv")
    detect.add_argument("--jsonl", action="store_true", help="one JSON object per input row")

    incidents = sub.add_parser("incidents", help="read and answer the incident store")
    isub = incidents.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    listing = isub.add_parser("list", help="incidents, newest first")
    listing.add_argument("--state")
    listing.add_argument("--resource-type")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    show = isub.add_parser("show", help="one incident with its full timeline")
    show.add_argument("incident_id")
    show.add_argument("--json", action="store_true")
    approve = isub.add_parser("approve", help="approve a manual review")
    approve.add_argument("incident_id")
    approve.add_argument("--by", default=None, help="who approves (default: $USER)")
    reject = isub.add_parser("reject", help="reject a manual review")
    reject.add_argument("incident_id")
    reject.add_argument("--reason", default="")
    reject.add_argument("--by", default=None)
    _control_parsers(sub)
    return parser


def _control_parsers(sub: Any) -> None:
    """`silence`, `freeze`, `pause`, `resume`, `status` (CONTRACT.md, "Who decides")."""

    def until(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--duration", help="how long: 30m, 2h, 1h30m, 1d")
        group.add_argument("--until", help="when it ends (ISO-8601; no zone: UTC)")

    silence = sub.add_parser(
        "silence", help="no recovery and no notification for matching resources"
    )
    ssub = silence.add_subparsers(dest="control_command", required=True, metavar="ACTION")
    add = ssub.add_parser("add", help="add a silence; prints its id")
    add.add_argument(
        "--match",
        action="append",
        required=True,
        metavar="KEY=GLOB",
        help="resource_type, resource_id, region, account, classification or tag:NAME",
    )
    until(add)
    add.add_argument("--reason", required=True)
    add.add_argument("--json", action="store_true")
    listing = ssub.add_parser("list", help="active silences")
    listing.add_argument("--all", action="store_true", help="expired ones too")
    listing.add_argument("--json", action="store_true")
    expire = ssub.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id", metavar="ID")
    expire.add_argument("--json", action="store_true")

    freeze = sub.add_parser("freeze", help="a change freeze: nothing runs without a person")
    fsub = freeze.add_subparsers(dest="control_command", required=True, metavar="ACTION")
    fadd = fsub.add_parser("add", help="add a freeze; prints its id")
    until(fadd)
    fadd.add_argument("--start", help="when it begins (ISO-8601; default: now)")
    fadd.add_argument("--reason", required=True)
    fadd.add_argument("--json", action="store_true")
    flist = fsub.add_parser("list", help="freezes in force or to come, and closed calendars")
    flist.add_argument("--all", action="store_true", help="ended ones too")
    flist.add_argument("--json", action="store_true")
    fend = fsub.add_parser("end", help="end a freeze now")
    fend.add_argument("freeze_id", metavar="ID")
    fend.add_argument("--json", action="store_true")

    pause = sub.add_parser("pause", help="the kill switch: nothing runs without a person")
    pause.add_argument("--reason", required=True)
    pause.add_argument("--json", action="store_true")
    resume = sub.add_parser("resume", help="end the pause")
    resume.add_argument("--json", action="store_true")
    status = sub.add_parser(
        "status", help="paused?, breaker, freezes, silences, open incidents, queue"
    )
    status.add_argument("--json", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    wants_json = bool(getattr(args, "json", False) or getattr(args, "jsonl", False))
    from aiops_agent.obs.logs import configure_logging

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"aiops-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # The daemon logs to stdout as containers expect; every other command keeps stdout for
    # its own output and logs to stderr.
    stream = sys.stdout if args.command == "run" else sys.stderr
    level = settings.log_level if args.command == "run" else "WARNING"
    configure_logging(level=level, fmt=settings.log_format, stream=stream)
    try:
        return _dispatch(args, settings, wants_json)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dispatch(args: argparse.Namespace, settings: Settings, wants_json: bool) -> int:
    from aiops_agent.cli import commands

    match args.command:
        case "run":
            if settings.queue_url is None:
                print(
                    "aiops-agent: invalid setting AIOPS_QUEUE_URL: required for `run`",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            from aiops_agent.app import run_daemon

            return asyncio.run(run_daemon(settings))
        case "demo":
            from aiops_agent.demo.emulator import INSTALL_HINT, emulator_installed
            from aiops_agent.demo.tour import run_demo

            if not emulator_installed():
                print(f"aiops-agent: {INSTALL_HINT}", file=sys.stderr)
                return EXIT_USAGE
            return asyncio.run(
                run_demo(as_json=wants_json, keep_running=args.keep_running, analyzer=args.analyzer)
            )
        case "bootstrap":
            return asyncio.run(commands.bootstrap(settings, as_json=wants_json))
        case "explain":
            return commands.explain(
                settings, Path(args.event_file), as_json=wants_json, analyzer=args.analyzer
            )
        case "send-event":
            return asyncio.run(
                commands.send_event(settings, Path(args.event_file), args.via_eventbridge)
            )
        case "incidents":
            return asyncio.run(_incidents(args, settings, wants_json))
        case "logs":
            from aiops_agent.cli.logs import logs_mine

            return logs_mine(Path(args.file), args.jsonl)
        case "detect":
            from aiops_agent.cli.logs import detect

            return detect(Path(args.file), args.jsonl)
        case "silence" | "freeze" | "pause" | "resume":
            from aiops_agent.cli.control import run_control

            return asyncio.run(run_control(settings, args, wants_json))
        case "status":
            from aiops_agent.cli.status import status

            return asyncio.run(status(settings, as_json=wants_json))
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


async def _incidents(args: argparse.Namespace, settings: Settings, wants_json: bool) -> int:
    from aiops_agent.cli import commands

    match args.incidents_command:
        case "list":
            return await commands.list_incidents(
                settings,
                state=args.state,
                resource_type=args.resource_type,
                limit=args.limit,
                as_json=wants_json,
            )
        case "show":
            return await commands.show_incident(settings, args.incident_id, as_json=wants_json)
        case "approve":
            return await commands.review(settings, args.incident_id, approve=True, by=args.by)
        case "reject":
            return await commands.review(
                settings, args.incident_id, approve=False, by=args.by, reason=args.reason
            )
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
