"""`aiops-agent demo`: the whole agent on an embedded AWS emulator, no account, no Docker.

Starts moto's server on loopback, bootstraps the queue, rules, tables, topic and project, creates a
few real resources, starts the daemon, then breaks the resources for real and puts the events that
AWS would emit through EventBridge. It waits for every incident to close, prints each timeline,
and exits 0 (or 1 if an incident did not end as expected).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

from aiops_agent.analysis.fake_bedrock import FakeBedrock
from aiops_agent.app import build_clients, build_store, run_daemon
from aiops_agent.aws.clients import AwsClients
from aiops_agent.cli.render import incident_timeline
from aiops_agent.demo.emulator import DUMMY_CREDENTIALS, MotoServer, free_port
from aiops_agent.demo.iac import play_terraform
from aiops_agent.demo.scenarios import DEMO_PIPELINE, SCENARIOS, Scenario
from aiops_agent.domain.models import Incident
from aiops_agent.logs import demo_log_spike
from aiops_agent.provision.bootstrap import bootstrap
from aiops_agent.settings import Settings

DEADLINE_S = 90.0
DEMO_LOG_GROUP = "/aiops/demo/payments-api"


def _say(message: str, as_json: bool) -> None:
    print(message, file=sys.stderr if as_json else sys.stdout, flush=True)


async def run_demo(
    *,
    as_json: bool = False,
    keep_running: bool = False,
    analyzer: Literal["rules", "bedrock"] = "rules",
) -> int:
    started = time.monotonic()
    for key, value in DUMMY_CREDENTIALS.items():
        os.environ[key] = value
    async with contextlib.AsyncExitStack() as stack:
        model_url = None
        if analyzer == "bedrock":
            # No account here: a local endpoint speaking Bedrock's Converse wire format plays
            # the model, and the agent treats it exactly as it would treat Bedrock.
            fake = await stack.enter_async_context(FakeBedrock())
            model_url = fake.url
            _say(f"model: fake Bedrock (Converse API) on {model_url}", as_json)
        return await _run(as_json, keep_running, started, analyzer, model_url)


async def _run(
    as_json: bool,
    keep_running: bool,
    started: float,
    analyzer: Literal["rules", "bedrock"],
    model_url: str | None,
) -> int:
    with MotoServer() as server:
        _say(f"AWS emulator (moto server) on {server.url}", as_json)
        settings = Settings(
            aws_endpoint_url=server.url,
            http_port=free_port(),
            receive_wait_seconds=1,
            sweep_seconds=1,
            verify_interval_seconds=1,
            verify_timeout_seconds=60,
            aws_max_attempts=2,
            # Events without an author wait for their CloudTrail record (120 s in production).
            # The demo's records are put at once, but a busy machine can take seconds to read
            # them: counted from the change, 2 s let the pipeline's stop be undone under load.
            attribution_grace_seconds=10,
            trusted_principals=[DEMO_PIPELINE],
            log_groups=[DEMO_LOG_GROUP],
            log_poll_seconds=2,
            analyzer=analyzer,
            bedrock_endpoint_url=model_url,
        )
        async with build_clients(settings) as clients:
            boot = await bootstrap(clients, settings)
            settings = settings.model_copy(
                update={"queue_url": boot.queue_url, "sns_topic_arn": boot.sns_topic_arn}
            )
            _say(f"bootstrapped: {', '.join(boot.created)}", as_json)
            await _demo_trail(clients)
            inbox = await _subscribe_inbox(clients, boot.sns_topic_arn)
            prepared = [(s, await s.prepare(clients)) for s in SCENARIOS]
            stop = asyncio.Event()
            http_port: list[int] = []
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    run_daemon(
                        settings,
                        stop=stop,
                        install_signal_handlers=False,
                        on_started=http_port.append,
                    )
                )
                group.create_task(play_terraform(clients, build_store(settings, clients), stop))
                try:
                    code = await _tour(clients, settings, prepared, inbox, as_json, started)
                    if keep_running:
                        await _wait_for_interrupt(server.url, http_port, as_json)
                finally:
                    stop.set()
    return code


async def _demo_trail(clients: AwsClients) -> None:
    """A trail that logs management events, as the account the agent watches must have: the
    agent asks a person before undoing a stop made through the API that no trail can attribute.
    """
    s3 = await clients.client("s3")
    await s3.create_bucket(Bucket="aiops-demo-trail")
    cloudtrail = await clients.client("cloudtrail")
    await cloudtrail.create_trail(
        Name="aiops-demo", S3BucketName="aiops-demo-trail", IsMultiRegionTrail=True
    )
    await cloudtrail.start_logging(Name="aiops-demo")


async def _tour(
    clients: AwsClients,
    settings: Settings,
    prepared: list[tuple[Scenario, dict[str, str]]],
    inbox: str,
    as_json: bool,
    started: float,
) -> int:
    events = await clients.client("events")
    for scenario, resources in prepared:
        _say(f"scenario: {scenario.title}", as_json)
        entries = await scenario.act(clients, resources)
        response = await events.put_events(Entries=entries)
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {response['Entries']}")
    _say("scenario: log error spike (a never-seen error shape, 25 times in one window)", as_json)
    # One window ahead: the running analyzer must not close the spike's window before the
    # events land (on a busy machine, PutLogEvents took longer than the 0.6 s it tolerates).
    await demo_log_spike(
        clients, DEMO_LOG_GROUP, window_seconds=settings.log_poll_seconds, spike_ahead_windows=1
    )
    expected = {scenario.resource_id(resources): scenario for scenario, resources in prepared}
    incidents = await _wait_for_incidents(clients, settings, set(expected))
    notifications = await _collect_inbox(clients, inbox, until=lambda n: _proactive(n) > 0)
    proactive = _proactive(notifications)
    ok = True
    for incident in sorted(incidents, key=lambda i: i.created_at):
        scenario = expected[incident.resource_id]
        if incident.workflow_state.value not in scenario.expect:
            ok = False
            _say(
                f"demo: {incident.resource_id} ended {incident.workflow_state.value}, "
                f"expected {' or '.join(sorted(scenario.expect))}",
                True,
            )
    if as_json:
        sys.stdout.write(json.dumps([i.to_public() for i in incidents], indent=2) + "\n")
    else:
        for incident in sorted(incidents, key=lambda i: i.created_at):
            print()
            print(incident_timeline(incident))
        for subject, message in notifications:
            if "PROACTIVE" in subject:
                print()
                print(subject)
                print(message)
        print()
        print(
            f"{len(incidents)} incidents, {proactive} proactive log alert(s), "
            f"{len(notifications)} SNS notifications delivered, "
            f"{time.monotonic() - started:.1f}s"
        )
    missing = set(expected) - {i.resource_id for i in incidents}
    for resource_id in sorted(missing):
        _say(f"demo: no terminal incident for {resource_id}", True)
    if proactive != 1:
        _say(f"demo: expected one proactive log alert, got {proactive}", True)
    return 0 if ok and not missing and proactive == 1 else 1


def _proactive(notifications: list[tuple[str, str]]) -> int:
    return sum(1 for subject, _ in notifications if "PROACTIVE" in subject)


async def _wait_for_incidents(
    clients: AwsClients, settings: Settings, resource_ids: set[str]
) -> list[Incident]:
    store = build_store(settings, clients)
    deadline = time.monotonic() + DEADLINE_S
    latest: list[Incident] = []
    while time.monotonic() < deadline:
        found = await store.list_incidents(limit=100)
        latest = [i for i in found if i.resource_id in resource_ids]
        done = {i.resource_id for i in latest if i.terminal and not i.pending}
        if done >= resource_ids:
            # The first incident per resource is the scenario's; later ones are echoes.
            first: dict[str, Incident] = {}
            for incident in sorted(latest, key=lambda i: i.created_at):
                first.setdefault(incident.resource_id, incident)
            return list(first.values())
        await asyncio.sleep(0.5)
    return [i for i in latest if i.terminal]


async def _subscribe_inbox(clients: AwsClients, topic_arn: str) -> str:
    sqs = await clients.client("sqs")
    sns = await clients.client("sns")
    url = (await sqs.create_queue(QueueName="aiops-demo-inbox"))["QueueUrl"]
    attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    await sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=attrs["Attributes"]["QueueArn"]
    )
    return str(url)


async def _collect_inbox(
    clients: AwsClients,
    url: str,
    until: Callable[[list[tuple[str, str]]], bool],
    within: float = 30.0,
) -> list[tuple[str, str]]:
    """(subject, message) of every notification delivered, until `until` holds and it is quiet."""
    sqs = await clients.client("sqs")
    received: list[tuple[str, str]] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got: dict[str, Any] = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = got.get("Messages", [])
        if not messages and until(received):
            break
        for message in messages:
            body = json.loads(message["Body"])
            received.append((str(body.get("Subject", "")), str(body.get("Message", ""))))
        if messages:
            await sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
    return received


async def _wait_for_interrupt(endpoint: str, http_port: list[int], as_json: bool) -> None:
    port = http_port[0] if http_port else "?"
    _say(
        f"running: AWS endpoint {endpoint}, agent HTTP on http://127.0.0.1:{port} "
        "(/healthz /readyz /metrics); Ctrl-C to stop",
        as_json,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
