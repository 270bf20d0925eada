"""Done means: a normal log stream, then an error spike -> exactly one proactive alert in a queue
subscribed to the SNS topic. The LogAnalyzer is built directly, with 1-second windows, on a
stopped clock: the events are written around one instant and the analyzer's "now" is that
instant plus 2 s, however long the machine takes between the two."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops_agent.analysis.factory import build_bedrock_clients
from aiops_agent.aws.clients import AwsClients
from aiops_agent.logs import AnalyzerConfig, LogAnalyzer, demo_log_spike
from aiops_agent.logs.assessor import build_log_assessor
from aiops_agent.logs.demo import SPIKE
from aiops_agent.notify.sns import SnsNotifier
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics
from aiops_agent.settings import Settings
from aiops_agent.store.tables import PATTERNS_ATTRIBUTE_DEFINITIONS, PATTERNS_KEY_SCHEMA
from tests.fake_bedrock import AUTO, FakeBedrock


class StoppedClock:
    """Always the same instant (the analyzer's only notion of now)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def _subscribed_queue(aws: AwsClients, unique: str) -> tuple[str, str]:
    sns = await aws.client("sns")
    sqs = await aws.client("sqs")
    topic_arn = (await sns.create_topic(Name=f"logalert-{unique}"))["TopicArn"]
    queue_url = (await sqs.create_queue(QueueName=f"logalert-{unique}"))["QueueUrl"]
    attrs = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    await sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=attrs["Attributes"]["QueueArn"]
    )
    return topic_arn, queue_url


async def _drain(aws: AwsClients, queue_url: str) -> list[dict[str, Any]]:
    sqs = await aws.client("sqs")
    out: list[dict[str, Any]] = []
    for wait in (0, 0):  # SNS -> SQS delivers during Publish
        resp = await sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=wait, MaxNumberOfMessages=10
        )
        out.extend(json.loads(m["Body"]) for m in resp.get("Messages", []))
    return out


async def _one_alert(
    aws: AwsClients, moto_endpoint: str, unique: str, **extra: Any
) -> tuple[str, str, Metrics]:
    """Normal history then the spike, analyzed twice; the one alert's text and the metrics."""
    topic_arn, queue_url = await _subscribed_queue(aws, unique)
    group = f"/aiops/e2e/{unique}"
    settings = Settings(
        aws_endpoint_url=moto_endpoint,
        log_groups=[group],
        log_poll_seconds=1,
        patterns_table=f"patterns-{unique}",
        incident_table=f"incidents-{unique}",
        sns_topic_arn=topic_arn,
        **extra,
    )
    ddb = await aws.client("dynamodb")
    await ddb.create_table(
        TableName=settings.patterns_table,
        KeySchema=PATTERNS_KEY_SCHEMA,
        AttributeDefinitions=PATTERNS_ATTRIBUTE_DEFINITIONS,
        BillingMode="PAY_PER_REQUEST",
    )
    metrics = Metrics()
    anchor_ms = int(time.time()) * 1000  # a whole second (the emulator keeps 14 days of events)
    anchor = datetime.fromtimestamp(anchor_ms / 1000, UTC)
    async with contextlib.AsyncExitStack() as stack:
        model_clients = build_bedrock_clients(settings, metrics)  # as the app builds them
        if model_clients is not None:
            await stack.enter_async_context(model_clients)
        analyzer = LogAnalyzer(
            settings,
            aws,
            None,
            SnsNotifier(aws, topic_arn),
            metrics,
            Health(metrics),
            StoppedClock(anchor + timedelta(seconds=2)),  # the spike's window is complete
            config=AnalyzerConfig(backfill_windows=14, max_windows_per_cycle=40),
            assessor=build_log_assessor(settings, model_clients or aws, metrics),
        )
        written = await demo_log_spike(
            aws, group, window_seconds=1, history_windows=13, now_ms=anchor_ms
        )
        assert written == 13 * 3 + 25

        sent = await analyzer.run_once()  # the normal history (learned), then the spike
        sent += await analyzer.run_once()  # nothing new: no second alert
    assert sent == 1

    bodies = await _drain(aws, queue_url)
    assert len(bodies) == 1
    body = bodies[0]
    assert "PROACTIVE" in body["Subject"]
    text = body["Message"]
    assert "PROACTIVE alert" in text
    assert group in text
    assert "new_template" in text and "25 in this window" in text
    assert SPIKE.split("{")[0].strip() in text  # the template is named
    assert "retrying request" not in text  # the benign recurring error did not alert
    assert metrics.proactive_alerts._value.get() == 1
    return group, text, metrics


async def test_normal_stream_then_spike_gives_one_proactive_alert(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    _, text, _ = await _one_alert(aws, moto_endpoint, unique)
    assert "assessed by: rules" in text


async def test_with_bedrock_the_model_assesses_the_one_alert(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    async with FakeBedrock(default=AUTO) as fake:
        group, text, metrics = await _one_alert(
            aws, moto_endpoint, unique, analyzer="bedrock", bedrock_endpoint_url=fake.url
        )
    assert len(fake.requests) == 1  # only the window with the anomaly reached the model
    (request,) = fake.requests
    assert request["toolConfig"]["toolChoice"] == {"tool": {"name": "record_log_assessment"}}
    prompt = request["messages"][0]["content"][0]["text"]
    assert "<log_anomalies>" in prompt and group in prompt and "new_template" in prompt
    assert "assessed by: bedrock-logs" in text
    assert "likely cause: model: new_template of 'ERROR payment-db connection refused" in text
    labels = {"analyzer": "bedrock-logs", "outcome": "ok"}
    assert metrics.registry.get_sample_value("aiops_analyzer_requests_total", labels) == 1
