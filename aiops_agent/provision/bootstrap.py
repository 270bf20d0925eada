"""`aiops-agent bootstrap`: create, idempotently, the AWS resources the agent runs on.

On the clients' endpoint (LocalStack, the embedded emulator, or a real account): the SQS queue and
its dead-letter queue, the EventBridge rule on the default bus that feeds the queue (with the
queue policy that lets that rule send), both DynamoDB tables, the SNS topic, and a placeholder
CodeBuild recovery project with its service role. What exists is found and left as it is; a
second run creates nothing. EventBridge targets only SQS: moto's PutEvents fails on SNS targets.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import structlog
from botocore.exceptions import ClientError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_fixed

from aiops_agent.aws.clients import AwsClients
from aiops_agent.intake import routing
from aiops_agent.settings import Settings
from aiops_agent.store.tables import ensure_tables

log = structlog.get_logger(__name__)

DEFAULT_QUEUE_NAME = "aiops-events"
DEFAULT_RULE_NAME = "aiops-agent-events"
DEFAULT_TOPIC_NAME = "aiops-notifications"
TARGET_ID = "aiops-agent-queue"
MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
ROLE_PROPAGATION_SECONDS = 60.0
"""A new IAM role can take this long before CodeBuild may assume it."""

EVENT_SOURCES: tuple[str, ...] = routing.event_sources()
DETAIL_TYPES: tuple[str, ...] = routing.detail_types()
"""Generated from the registered normalizers (intake/routing.py); S3 `Object Created` and the
other per-object events are left out (routing.UNROUTED): they could flood the queue."""

CODEBUILD_IMAGE = "aws/codebuild/amazonlinux2-x86_64-standard:5.0"
PLACEHOLDER_BUILDSPEC = """\
version: 0.2
phases:
  build:
    commands:
      - echo "aiops recovery of $AIOPS_RESOURCE_TYPE $AIOPS_RESOURCE_ID"
      - echo "incident token $AIOPS_INCIDENT_TOKEN"
      - echo "placeholder: replace this buildspec with your terraform apply or stack deploy"
"""
_CODEBUILD_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "codebuild.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
_CODEBUILD_LOGS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:*:logs:*:*:log-group:/aws/codebuild/*",
        }
    ],
}
_NO_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


class BootstrapError(RuntimeError):
    """A resource named in the settings does not exist, or AWS refused to create one."""


def event_pattern() -> dict[str, list[str]]:
    """The EventBridge pattern of the events the agent consumes (also for Terraform/docs)."""
    return routing.event_pattern()


@dataclass
class BootstrapResult:
    queue_url: str
    dead_letter_queue_url: str | None
    sns_topic_arn: str
    incident_table: str
    patterns_table: str
    codebuild_project: str
    created: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, str | None]:
        """The `bootstrap --json` object of CONTRACT.md, exactly."""
        return {
            "queue_url": self.queue_url,
            "dead_letter_queue_url": self.dead_letter_queue_url,
            "sns_topic_arn": self.sns_topic_arn,
            "incident_table": self.incident_table,
            "patterns_table": self.patterns_table,
            "codebuild_project": self.codebuild_project,
        }


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code") or "") if isinstance(response, dict) else ""


class _Report:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.found: list[str] = []

    def add(self, what: str, created: bool) -> None:
        (self.created if created else self.found).append(what)
        log.info("bootstrap.created" if created else "bootstrap.found", resource=what)


async def bootstrap(
    clients: AwsClients,
    settings: Settings,
    *,
    queue_name: str = DEFAULT_QUEUE_NAME,
    rule_name: str = DEFAULT_RULE_NAME,
    topic_name: str = DEFAULT_TOPIC_NAME,
) -> BootstrapResult:
    """Create what is missing, find what exists; see the module docstring."""
    report = _Report()
    sqs = await clients.client("sqs")
    if settings.queue_url:
        queue_url = settings.queue_url
        queue_arn, dlq_url = await _existing_queue(sqs, queue_url)
        report.add(f"sqs:{queue_arn.rsplit(':', 1)[-1]}", created=False)
    else:
        dlq_url, dlq_arn = await _ensure_queue(
            sqs,
            f"{queue_name}-dlq",
            {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
            report,
        )
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
        attributes = {
            "VisibilityTimeout": str(settings.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        }
        queue_url, queue_arn = await _ensure_queue(sqs, queue_name, attributes, report)

    rule_arn = await _ensure_rule(clients, rule_name, queue_arn, report)
    await _ensure_queue_policy(sqs, queue_url, queue_arn, rule_name, rule_arn, report)

    tables = await ensure_tables(clients, settings.incident_table, settings.patterns_table)
    for table, outcome in tables.items():
        report.add(f"dynamodb:{table}", created=outcome == "created")

    topic_arn = await _ensure_topic(clients, settings.sns_topic_arn, topic_name, report)
    try:
        await _ensure_codebuild_project(clients, settings.codebuild_project, report)
    except ClientError as exc:
        if not _service_unavailable(exc):
            raise
        # LocalStack's community edition has no CodeBuild: everything else works, and IaC
        # restores fail visibly (their step reports the missing project) instead of the
        # whole stack refusing to start.
        log.warning(
            "bootstrap.codebuild_unavailable", project=settings.codebuild_project, error=str(exc)
        )

    return BootstrapResult(
        queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
        sns_topic_arn=topic_arn,
        incident_table=settings.incident_table,
        patterns_table=settings.patterns_table,
        codebuild_project=settings.codebuild_project,
        created=report.created,
        found=report.found,
    )


# ---------------------------------------------------------------- SQS


async def _queue_arn(sqs: Any, url: str) -> str:
    attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


async def _ensure_queue(
    sqs: Any, name: str, attributes: dict[str, str], report: _Report
) -> tuple[str, str]:
    """(url, arn) of queue `name`, created with `attributes` if missing."""
    try:
        url = str((await sqs.get_queue_url(QueueName=name))["QueueUrl"])
        created = False
    except ClientError as exc:
        if _code(exc) not in _NO_QUEUE:
            raise
        url = str((await sqs.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"])
        created = True
    report.add(f"sqs:{name}", created)
    return url, await _queue_arn(sqs, url)


async def _existing_queue(sqs: Any, url: str) -> tuple[str, str | None]:
    """(arn, dead-letter queue url or None) of the configured queue, which must exist."""
    try:
        attrs = await sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"]
        )
    except ClientError as exc:
        if _code(exc) in _NO_QUEUE:
            raise BootstrapError(f"AIOPS_QUEUE_URL {url} does not exist") from None
        raise
    arn = str(attrs["Attributes"]["QueueArn"])
    redrive = attrs["Attributes"].get("RedrivePolicy")
    if not redrive:
        log.warning("bootstrap.queue_without_dlq", queue_url=url)
        return arn, None
    dlq_arn = str(json.loads(redrive)["deadLetterTargetArn"])
    _, _, _, _, account, dlq_name = dlq_arn.split(":", 5)
    resp = await sqs.get_queue_url(QueueName=dlq_name, QueueOwnerAWSAccountId=account)
    return arn, str(resp["QueueUrl"])


def _policy_statement(queue_arn: str, rule_name: str, rule_arn: str) -> dict[str, Any]:
    return {
        "Sid": f"aiops-eventbridge-{rule_name}",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }


async def _ensure_queue_policy(
    sqs: Any, url: str, queue_arn: str, rule_name: str, rule_arn: str, report: _Report
) -> None:
    """Merge the statement letting the rule send into the queue policy (others are kept)."""
    attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    raw = attrs.get("Attributes", {}).get("Policy")
    policy: dict[str, Any] = json.loads(raw) if raw else {"Version": "2012-10-17"}
    statements: list[dict[str, Any]] = list(policy.get("Statement") or [])
    wanted = _policy_statement(queue_arn, rule_name, rule_arn)
    what = f"sqs-policy:{queue_arn.rsplit(':', 1)[-1]}/{wanted['Sid']}"
    if wanted in statements:
        report.add(what, created=False)
        return
    statements = [s for s in statements if s.get("Sid") != wanted["Sid"]] + [wanted]
    policy["Statement"] = statements
    await sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    report.add(what, created=True)


# ---------------------------------------------------------------- EventBridge


async def _ensure_rule(clients: AwsClients, name: str, queue_arn: str, report: _Report) -> str:
    events = await clients.client("events")
    pattern = event_pattern()
    try:
        rule = await events.describe_rule(Name=name)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        rule = None
    created = rule is None
    if rule is None or json.loads(rule.get("EventPattern") or "{}") != pattern:
        resp = await events.put_rule(
            Name=name,
            EventPattern=json.dumps(pattern),
            State="ENABLED",
            Description="AWS events the aiops-agent consumes, delivered to its SQS queue",
        )
        if rule is not None:
            log.info("bootstrap.rule_pattern_updated", rule=name)
        rule_arn = str(resp["RuleArn"])
    else:
        rule_arn = str(rule["Arn"])
    report.add(f"events:rule/{name}", created)

    targets = await events.list_targets_by_rule(Rule=name)
    have = {t["Id"]: t.get("Arn") for t in targets.get("Targets", [])}
    if have.get(TARGET_ID) == queue_arn:
        report.add(f"events:target/{name}/{TARGET_ID}", created=False)
        return rule_arn
    resp = await events.put_targets(Rule=name, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}])
    if resp.get("FailedEntryCount"):
        raise BootstrapError(f"cannot target queue {queue_arn}: {resp.get('FailedEntries')}")
    report.add(f"events:target/{name}/{TARGET_ID}", created=True)
    return rule_arn


# ---------------------------------------------------------------- SNS


async def _ensure_topic(
    clients: AwsClients, configured_arn: str | None, name: str, report: _Report
) -> str:
    sns = await clients.client("sns")
    if configured_arn:
        try:
            await sns.get_topic_attributes(TopicArn=configured_arn)
        except ClientError as exc:
            if _code(exc) == "NotFound":
                raise BootstrapError(
                    f"AIOPS_SNS_TOPIC_ARN {configured_arn} does not exist"
                ) from None
            raise
        report.add(f"sns:{configured_arn.rsplit(':', 1)[-1]}", created=False)
        return configured_arn
    paginator = sns.get_paginator("list_topics")
    async with asyncio.timeout(60):
        async for page in paginator.paginate():
            for topic in page.get("Topics", []):
                arn = str(topic["TopicArn"])
                if arn.rsplit(":", 1)[-1] == name:
                    report.add(f"sns:{name}", created=False)
                    return arn
    arn = str((await sns.create_topic(Name=name))["TopicArn"])
    report.add(f"sns:{name}", created=True)
    return arn


# ---------------------------------------------------------------- CodeBuild


def codebuild_role_name(project: str) -> str:
    """The placeholder project's service role: `aiops-recovery-codebuild` by default."""
    return f"{project}-codebuild"[:64]


async def _ensure_codebuild_role(clients: AwsClients, name: str, report: _Report) -> str:
    iam = await clients.client("iam")
    try:
        role = (await iam.get_role(RoleName=name))["Role"]
        report.add(f"iam:role/{name}", created=False)
        return str(role["Arn"])
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
    role = (
        await iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(_CODEBUILD_TRUST),
            Description="Service role of the aiops-agent IaC recovery CodeBuild project",
        )
    )["Role"]
    await iam.put_role_policy(
        RoleName=name,
        PolicyName="codebuild-logs",
        PolicyDocument=json.dumps(_CODEBUILD_LOGS_POLICY),
    )
    report.add(f"iam:role/{name}", created=True)
    return str(role["Arn"])


def _role_not_ready(exc: BaseException) -> bool:
    """CodeBuild refuses a role IAM has not propagated yet; that error is worth waiting out."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return _code(exc) == "InvalidInputException" and "sts:assumerole" in message


def _service_unavailable(exc: ClientError) -> bool:
    """The endpoint does not offer the service at all (an emulator without it)."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return (
        status == 501
        or _code(exc) in {"InternalFailure", "NotImplemented", "NotImplementedException"}
        or "not yet implemented" in message
        or "pro feature" in message
    )


async def _ensure_codebuild_project(clients: AwsClients, project: str, report: _Report) -> None:
    codebuild = await clients.client("codebuild")
    existing = await codebuild.batch_get_projects(names=[project])
    if any(p.get("name") == project for p in existing.get("projects", [])):
        report.add(f"codebuild:{project}", created=False)
        return
    role_arn = await _ensure_codebuild_role(clients, codebuild_role_name(project), report)
    spec: dict[str, Any] = {
        "name": project,
        "description": "aiops-agent IaC recovery (placeholder: replace the buildspec)",
        "source": {"type": "NO_SOURCE", "buildspec": PLACEHOLDER_BUILDSPEC},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": CODEBUILD_IMAGE,
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        "serviceRole": role_arn,
        "timeoutInMinutes": 60,
    }

    async def create() -> None:
        try:
            await codebuild.create_project(**spec)
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", "")).lower()
            if _code(exc) != "InvalidInputException" or "location" not in message:
                raise
            # Some emulators (moto) want a source location even for NO_SOURCE; AWS does not.
            spec["source"] = {**spec["source"], "location": "none"}
            await codebuild.create_project(**spec)

    retrying = AsyncRetrying(
        stop=stop_after_delay(ROLE_PROPAGATION_SECONDS),
        wait=wait_fixed(5),
        retry=retry_if_exception(_role_not_ready),
        reraise=True,
    )
    try:
        async with asyncio.timeout(ROLE_PROPAGATION_SECONDS + 60):
            await retrying(create)
    except ClientError as exc:
        if _code(exc) != "ResourceAlreadyExistsException":
            raise
        report.add(f"codebuild:{project}", created=False)  # created meanwhile by another run
        return
    report.add(f"codebuild:{project}", created=True)
