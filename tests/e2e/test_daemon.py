"""The whole daemon against the moto server: EventBridge -> SQS -> incident -> recovery -> SNS."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aiops_agent.app import build_store, run_daemon
from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.emulator import free_port
from aiops_agent.domain.models import Incident, WorkflowState
from aiops_agent.provision.bootstrap import BootstrapResult, bootstrap
from aiops_agent.settings import Settings


@dataclass
class Stack:
    settings: Settings
    boot: BootstrapResult
    inbox_url: str


async def wait_for(predicate: Any, within: float = 30.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
async def stack(aws: AwsClients, moto_endpoint: str, unique: str) -> AsyncIterator[Stack]:
    settings = Settings(
        aws_endpoint_url=moto_endpoint,
        incident_table=f"inc-{unique}",
        patterns_table=f"pat-{unique}",
        codebuild_project=f"recovery-{unique}",
        http_port=free_port(),
        receive_wait_seconds=1,
        sweep_seconds=0.5,
        verify_interval_seconds=0.5,
        aws_max_attempts=1,
        attribution_grace_seconds=0,  # the wait for an author: test_a_trusted_pipelines_stop...
    )
    boot = await bootstrap(aws, settings, queue_name=f"events-{unique}")
    settings = settings.model_copy(
        update={"queue_url": boot.queue_url, "sns_topic_arn": boot.sns_topic_arn}
    )
    sqs = await aws.client("sqs")
    sns = await aws.client("sns")
    inbox = (await sqs.create_queue(QueueName=f"inbox-{unique}"))["QueueUrl"]
    arn = (await sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    await sns.subscribe(TopicArn=boot.sns_topic_arn, Protocol="sqs", Endpoint=arn)
    yield Stack(settings, boot, inbox)


async def launch(aws: AwsClients) -> str:
    ec2 = await aws.client("ec2")
    image = (await ec2.describe_images(Owners=["amazon"]))["Images"][0]["ImageId"]
    got = await ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    return str(got["Instances"][0]["InstanceId"])


async def instance_state(aws: AwsClients, instance_id: str) -> str:
    ec2 = await aws.client("ec2")
    got = await ec2.describe_instances(InstanceIds=[instance_id])
    return str(got["Reservations"][0]["Instances"][0]["State"]["Name"])


def state_change(instance_id: str, state: str) -> dict[str, Any]:
    return {
        "Source": "aws.ec2",
        "DetailType": "EC2 Instance State-change Notification",
        "Resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"],
        "Detail": json.dumps({"instance-id": instance_id, "state": state}),
    }


async def test_stopped_instance_is_recovered_end_to_end(aws: AwsClients, stack: Stack) -> None:
    instance_id = await launch(aws)
    ec2 = await aws.client("ec2")
    await ec2.stop_instances(InstanceIds=[instance_id])
    assert await instance_state(aws, instance_id) == "stopped"

    stop = asyncio.Event()
    daemon = asyncio.create_task(
        run_daemon(stack.settings, stop=stop, install_signal_handlers=False)
    )
    try:
        events = await aws.client("events")
        put = await events.put_events(Entries=[state_change(instance_id, "stopped")])
        assert put["FailedEntryCount"] == 0

        store = build_store(stack.settings, aws)

        async def completed() -> Incident | None:
            found = await store.list_incidents(resource_type="ec2")
            done = [
                i for i in found if i.resource_id == instance_id and i.terminal and not i.pending
            ]
            return done[0] if done else None

        incident = await wait_for(completed)
        assert incident.workflow_state is WorkflowState.COMPLETED, incident.timeline
        assert [r.action for r in incident.recovery_actions] == ["ec2.start_instances"]
        assert incident.verification is not None and incident.verification.status == "PASSED"
        states = [e.state for e in incident.timeline]
        for expected in (
            WorkflowState.ANALYZING,
            WorkflowState.PLANNING,
            WorkflowState.EXECUTING,
            WorkflowState.VERIFYING,
            WorkflowState.COMPLETED,
        ):
            assert expected in states
        assert await instance_state(aws, instance_id) == "running"

        sqs = await aws.client("sqs")

        async def notification() -> dict[str, Any] | None:
            got = await sqs.receive_message(QueueUrl=stack.inbox_url, WaitTimeSeconds=1)
            for message in got.get("Messages", []):
                body = json.loads(message["Body"])
                if instance_id in body.get("Subject", "") + body.get("Message", ""):
                    return dict(body)
            return None

        note = await wait_for(notification)
        assert "COMPLETED" in note["Subject"]

        url = f"http://127.0.0.1:{stack.settings.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/metrics") as resp:
                text = await resp.text()
            async with http.get(f"{url}/readyz") as resp:
                assert resp.status == 200
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200
        assert 'aiops_incidents_total{outcome="COMPLETED",resource_type="ec2"} 1.0' in text

        # The queue empties: the message was deleted after its effect was stored (deletes wait
        # up to 0.2 s to share a batch).
        async def queue_empty() -> bool | None:
            attrs = await sqs.get_queue_attributes(
                QueueUrl=stack.boot.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
            a = attrs["Attributes"]
            left = a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]
            return True if left == ("0", "0") else None

        assert await wait_for(queue_empty, within=60.0)
    finally:
        stop.set()
        assert await asyncio.wait_for(daemon, timeout=30) == 0


PIPELINE = "arn:aws:iam::123456789012:role/deploy-pipeline"


def stop_call(instance_id: str, principal: str) -> dict[str, Any]:
    """The CloudTrail record of a StopInstances call, as EventBridge delivers it."""
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "arn": principal, "accountId": "123456789012"},
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "StopInstances",
        "awsRegion": "us-east-1",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": instance_id}]}},
        "eventID": f"ct-{instance_id}",
        "readOnly": False,
        "eventType": "AwsApiCall",
    }
    return {
        "Source": "aws.ec2",
        "DetailType": "AWS API Call via CloudTrail",
        "Detail": json.dumps(detail),
    }


async def test_a_trusted_pipelines_stop_is_not_undone(aws: AwsClients, stack: Stack) -> None:
    """EC2 reports the stop at once and without its author; the CloudTrail record, with the
    pipeline's role, comes later. The agent waits for it and leaves the instance stopped."""
    instance_id = await launch(aws)
    ec2 = await aws.client("ec2")
    await ec2.stop_instances(InstanceIds=[instance_id])
    settings = stack.settings.model_copy(
        update={"attribution_grace_seconds": 20, "trusted_principals": [PIPELINE]}
    )
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop=stop, install_signal_handlers=False))
    try:
        events = await aws.client("events")
        store = build_store(settings, aws)

        async def waiting() -> Incident | None:
            found = await store.list_incidents(resource_type="ec2")
            mine = [i for i in found if i.resource_id == instance_id and i.next_check_at]
            return mine[0] if mine else None

        await events.put_events(Entries=[state_change(instance_id, "stopped")])
        opened = await wait_for(waiting)
        assert opened.workflow_state is WorkflowState.PLANNING
        assert "waiting for its CloudTrail record" in opened.timeline[-1].detail

        await events.put_events(Entries=[stop_call(instance_id, PIPELINE)])

        async def closed() -> Incident | None:
            got = await store.get(opened.incident_id)
            return got if got is not None and got.terminal else None

        incident = await wait_for(closed)
        assert incident.workflow_state is WorkflowState.IGNORED, incident.timeline
        assert "explained by StopInstances by " + PIPELINE in incident.timeline[-1].detail
        assert incident.recovery_actions == ()
        assert await instance_state(aws, instance_id) == "stopped"
    finally:
        stop.set()
        assert await asyncio.wait_for(daemon, timeout=30) == 0


async def test_malformed_message_goes_to_the_dead_letter_queue(
    aws: AwsClients, stack: Stack
) -> None:
    sqs = await aws.client("sqs")
    await sqs.send_message(QueueUrl=stack.boot.queue_url, MessageBody="{not json")
    await sqs.send_message(QueueUrl=stack.boot.queue_url, MessageBody=json.dumps({"x": 1}))
    stop = asyncio.Event()
    daemon = asyncio.create_task(
        run_daemon(stack.settings, stop=stop, install_signal_handlers=False)
    )
    try:

        async def dead_lettered() -> list[dict[str, Any]] | None:
            got = await sqs.receive_message(
                QueueUrl=stack.boot.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            )
            return got.get("Messages") or None

        seen: list[dict[str, Any]] = []
        while len(seen) < 2:
            seen += await wait_for(dead_lettered)
        bodies = sorted(m["Body"] for m in seen)
        assert bodies == sorted(["{not json", json.dumps({"x": 1})])
        for message in seen:
            assert message["MessageAttributes"]["aiops-reject-reason"]["StringValue"]
        assert not daemon.done(), "the daemon never dies from input"
    finally:
        stop.set()
        assert await asyncio.wait_for(daemon, timeout=30) == 0


RECEIVE_WAIT = 20
"""SQS's longest long poll, in seconds."""


@pytest.mark.slow  # ~22 s: it waits out a 20 s long poll on purpose; .ci/run's -m slow runs it
async def test_run_command_exits_0_on_sigterm(
    moto_endpoint: str, stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AIOPS_AWS_ENDPOINT_URL": moto_endpoint,
        "AIOPS_QUEUE_URL": stack.boot.queue_url,
        "AIOPS_INCIDENT_TABLE": stack.settings.incident_table,
        "AIOPS_HTTP_PORT": str(port),
        "AIOPS_RECEIVE_WAIT_SECONDS": str(RECEIVE_WAIT),
    }
    log_path = tmp_path / "agent.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(  # noqa: ASYNC220 - the daemon under test, in its own process
        [sys.executable, "-m", "aiops_agent", "run"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            assert await wait_for(ready, within=30)
        # A 20 s long poll is in flight: the stop lets it finish and gives back what it brings
        # (sources/sqs.py `_last_poll`), within the contract's 30 s: proc.wait's timeout.
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            pytest.fail("no exit within the contract's 30 s after SIGTERM")
        assert code == 0
        out = log_path.read_text()
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert any(line.get("event") == "agent.started" for line in lines), out
        assert any(line.get("event") == "agent.stopped" for line in lines), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log_file.close()


def test_bad_setting_stops_start_up_with_one_line() -> None:
    env = {**os.environ, "AIOPS_COOLDOWN_MINUTES": "soon", "AIOPS_QUEUE_URL": "http://x"}
    done = subprocess.run(
        [sys.executable, "-m", "aiops_agent", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "AIOPS_COOLDOWN_MINUTES" in lines[0]
