"""Every Prometheus collector of the agent, in one place, all named `aiops_*`.

Label values are bounded: nothing here ever takes an incident id, an event id or a resource id.
Values that come from the outside (resource types, reasons) go through `bounded` first, so an
unexpected value lands in `other` instead of creating a new series.

A `Metrics` owns its own `CollectorRegistry` (not the global one, whose default process and
platform collectors are not `aiops_`-prefixed), so tests can build as many as they like.
"""

from __future__ import annotations

import platform
from collections.abc import Collection

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from aiops_agent import __version__
from aiops_agent.domain.models import TERMINAL_STATES, Autonomy, PolicyDecision

NAMESPACE = "aiops"

RESOURCE_TYPES: frozenset[str] = frozenset(
    {
        "ec2",
        "lambda",
        "ssm",
        "dynamodb",
        "s3",
        "rds",
        "ecs",
        "iam",
        "autoscaling",
        "cloudwatch",
        "health",
        "other",
    }
)
"""The resource types a label may carry; anything else is counted as `other`."""

TERMINAL_OUTCOMES: frozenset[str] = frozenset(str(state) for state in TERMINAL_STATES)
"""Terminal workflow states, the values of the `outcome` label of `aiops_incidents_total`."""

CONSOLE_REFUSALS: frozenset[str] = frozenset({"auth", "csrf", "signin", "other"})
CONSOLE_ANSWERS: frozenset[str] = frozenset({"approve", "reject", "other"})
CONSOLE_OUTCOMES: frozenset[str] = frozenset({"applied", "conflict", "not_waiting", "other"})

DEAD_LETTER_REASONS: frozenset[str] = frozenset(
    {
        # The reasons of aiops_agent.intake.envelope.InvalidEvent, and two of the consumer's own.
        "not_json",
        "not_object",
        "too_large",
        "not_eventbridge",
        "unsupported",
        "missing_field",
        "invalid_field",
        "max_receives",
        "other",
    }
)
"""Why a message went to the dead-letter queue. Pre-initialised so `increase()` sees the first."""

KNOWN_EVENT_SOURCES: frozenset[str] = frozenset(
    {
        "aws.access-analyzer",
        "aws.autoscaling",
        "aws.backup",
        "aws.batch",
        "aws.cloudformation",
        "aws.cloudtrail",
        "aws.cloudwatch",
        "aws.codebuild",
        "aws.codedeploy",
        "aws.codepipeline",
        "aws.config",
        "aws.dynamodb",
        "aws.ec2",
        "aws.ecr",
        "aws.ecs",
        "aws.eks",
        "aws.elasticache",
        "aws.elasticloadbalancing",
        "aws.events",
        "aws.guardduty",
        "aws.health",
        "aws.iam",
        "aws.inspector2",
        "aws.kms",
        "aws.lambda",
        "aws.macie",
        "aws.monitoring",
        "aws.rds",
        "aws.redshift",
        "aws.route53",
        "aws.s3",
        "aws.scheduler",
        "aws.secretsmanager",
        "aws.securityhub",
        "aws.signin",
        "aws.sns",
        "aws.sqs",
        "aws.ssm",
        "aws.states",
        "aws.sts",
        "aws.trustedadvisor",
    }
)
"""Sources the `source` label may carry (AWS's own); any other is counted as `other`."""

KNOWN_DETAIL_TYPES: frozenset[str] = frozenset(
    {
        "AWS API Call via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "AWS Health Event",
        "AWS Insight via CloudTrail",
        "AWS Service Event via CloudTrail",
        "CloudWatch Alarm Configuration Change",
        "CloudWatch Alarm State Change",
        "Config Configuration Item Change",
        "Config Rules Compliance Change",
        "EBS Multi-Volume Snapshots Completion Status",
        "EBS Snapshot Notification",
        "EBS Volume Notification",
        "EC2 Auto Scaling Instance Refresh Cancelled",
        "EC2 Auto Scaling Instance Refresh Failed",
        "EC2 Auto Scaling Instance Refresh Started",
        "EC2 Auto Scaling Instance Refresh Succeeded",
        "EC2 Instance Launch Successful",
        "EC2 Instance Launch Unsuccessful",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Instance Terminate Successful",
        "EC2 Instance Terminate Unsuccessful",
        "EC2 Instance-launch Lifecycle Action",
        "EC2 Instance-terminate Lifecycle Action",
        "EC2 Spot Instance Interruption Warning",
        "ECS Container Instance State Change",
        "ECS Deployment State Change",
        "ECS Service Action",
        "ECS Task State Change",
        "GuardDuty Finding",
        "Inspector2 Finding",
        "KMS CMK Deletion",
        "KMS CMK Rotation",
        "KMS Imported Key Material Expiration",
        "Object Created",
        "Object Deleted",
        "Parameter Store Change",
        "RDS DB Cluster Event",
        "RDS DB Cluster Snapshot Event",
        "RDS DB Instance Event",
        "RDS DB Parameter Group Event",
        "RDS DB Proxy Event",
        "RDS DB Security Group Event",
        "RDS DB Snapshot Event",
        "Scheduled Event",
        "Security Hub Findings - Custom Action",
        "Security Hub Findings - Imported",
        "Security Hub Insight Results",
    }
)
"""Detail types the `detail_type` label may carry (every routed one, and common AWS kinds the
generic path handles); any other is counted as `other`."""

NORMALIZER_KINDS: frozenset[str] = frozenset({"specific", "generic"})
POLICY_OUTCOMES: tuple[str, ...] = ("silenced", *(a.value for a in Autonomy))
"""The `outcome` label of `aiops_policy_decisions_total`."""

MESSAGE_OUTCOMES: frozenset[str] = frozenset({"deleted", "released", "dead_lettered", "retried"})
SQS_OPERATIONS: frozenset[str] = frozenset(
    {"receive", "delete", "dead_letter", "change_visibility", "release", "process"}
)
"""What the consumer does around a handler; a failure of any of them is counted and survived."""

RECOVERY_BUCKETS: tuple[float, ...] = (
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
)
"""1 s to 30 min: from a restarted instance to a CodeBuild redeploy."""

MESSAGE_AGE_BUCKETS: tuple[float, ...] = (
    0.1,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    900.0,
    3600.0,
)
"""SQS lag: seconds between the queue's SentTimestamp and our receive."""

STEP_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


def bounded(value: str, allowed: Collection[str], other: str = "other") -> str:
    """`value` if it is one of `allowed`, else `other`: a label never grows without bound."""
    return value if value in allowed else other


class Metrics:
    """The agent's collectors. Attribute names are the engine's vocabulary; keep them stable."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        # PlatformCollector takes no namespace (it would emit `python_info`): left out.
        ProcessCollector(namespace=NAMESPACE, registry=reg)

        self.events_received = Counter(
            "events_received",
            "Events taken from a source, by resource type.",
            ["resource_type"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.event_kinds = Counter(
            "event_kinds",
            "Events handled, by source, detail-type and normalizer (specific, or generic: a kind "
            "the agent has no rule for).",
            ["source", "detail_type", "normalizer"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.events_rejected = Counter(
            "events_rejected",
            "Events refused before they became an incident, by reason.",
            ["reason"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.classifications = Counter(
            "classifications",
            "Analyses, by classification and resource type.",
            ["classification", "resource_type"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.incidents = Counter(
            "incidents",
            "Incidents that reached a terminal state, by that state and resource type.",
            ["outcome", "resource_type"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.transitions = Counter(
            "workflow_transitions",
            "Workflow state transitions.",
            ["from_state", "to_state"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.in_flight = Gauge(
            "incidents_in_flight",
            "Incidents with a step running in this process.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.recovery_duration = Histogram(
            "recovery_duration_seconds",
            "Time from an incident's creation to its terminal state.",
            ["resource_type", "outcome"],
            namespace=NAMESPACE,
            registry=reg,
            buckets=RECOVERY_BUCKETS,
        )
        self.attribution = Counter(
            "attribution",
            "Changes reported without an author, by what decided the plan: system (the "
            "instance says AWS or its OS stopped it: no wait), waited (for a CloudTrail record), "
            "unattributable (made through the API, no trail: a person decides), author_joined (the "
            "call's CloudTrail record joined, naming a principal that is not trusted).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.suppressions = Counter(
            "suppressions",
            "Incidents suppressed (cooldown, circuit breaker, ...), by reason.",
            ["reason"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.manual_reviews = Counter(
            "manual_reviews",
            "Incidents sent to manual review, by resource type.",
            ["resource_type"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.verifications = Counter(
            "verification_results",
            "Verification checks, by resource type and result.",
            ["resource_type", "result"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.actions = Counter(
            "recovery_actions",
            "Recovery actions run, by action name and outcome.",
            ["action", "outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.notifications = Counter(
            "notifications",
            "Notifications sent, by outcome.",
            ["outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.dead_lettered = Counter(
            "messages_dead_lettered",
            "Queue messages the agent sent to the dead-letter queue, by reason.",
            ["reason"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.messages = Counter(
            "sqs_messages",
            "Queue messages handled, by outcome (deleted, released, dead_lettered).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.sqs_failures = Counter(
            "sqs_operation_failures",
            "Queue operations around the handler that failed and were survived (receive, delete,"
            " dead_letter, change_visibility, release, process).",
            ["operation"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.message_age = Histogram(
            "sqs_message_age_seconds",
            "Age of a queue message when received (now - SentTimestamp).",
            namespace=NAMESPACE,
            registry=reg,
            buckets=MESSAGE_AGE_BUCKETS,
        )
        self.invalid_signals = Counter(
            "invalid_signals",
            "Signals that the workflow refused in the incident's state.",
            ["state", "signal"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.aws_calls = Counter(
            "aws_api_calls",
            "AWS API calls, by service, operation and outcome (ok or the error code).",
            ["service", "operation", "outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.loop_heartbeat = Gauge(
            "loop_last_beat_timestamp_seconds",
            "Unix time of each daemon loop's last heartbeat.",
            ["loop"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.build_info = Gauge(
            "build_info",
            "Always 1; the labels say which build runs.",
            ["version", "python"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.step_duration = Histogram(
            "step_duration_seconds",
            "Duration of one workflow step, by command.",
            ["command"],
            namespace=NAMESPACE,
            registry=reg,
            buckets=STEP_BUCKETS,
        )

        # -- analysis (rules / Bedrock) ----------------------------------------------------------
        self.analyzer_requests = Counter(
            "analyzer_requests",
            "Analyzer requests, by analyzer and outcome (ok, error, invalid, throttled, cached).",
            ["analyzer", "outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.analyzer_latency = Histogram(
            "analyzer_latency_seconds",
            "Analyzer request latency.",
            ["analyzer"],
            namespace=NAMESPACE,
            registry=reg,
            buckets=STEP_BUCKETS,
        )
        self.analyzer_tokens = Counter(
            "analyzer_tokens",
            "Model tokens used, by analyzer and direction (input, output).",
            ["analyzer", "direction"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.analyzer_cost = Counter(
            "analyzer_cost_dollars",
            "Estimated model cost in US dollars.",
            ["analyzer"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.analyzer_fallbacks = Counter(
            "analyzer_fallbacks",
            "Times the rules decided instead of the model, by reason.",
            ["reason"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.analyzer_confidence = Histogram(
            "analyzer_confidence",
            "Confidence of classifications, by analyzer.",
            ["analyzer"],
            namespace=NAMESPACE,
            registry=reg,
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
        )
        self.breaker_open = Gauge(
            "breaker_open",
            "1 while a circuit breaker is open, by breaker (analyzer, recovery).",
            ["breaker"],
            namespace=NAMESPACE,
            registry=reg,
        )
        # -- proactive log analysis ----------------------------------------------------------------
        self.log_windows = Counter(
            "log_windows_analyzed",
            "Log windows analyzed, by outcome (ok, empty, timeout, error, budget).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.log_bytes_scanned = Counter(
            "log_bytes_scanned",
            "Bytes scanned by CloudWatch Logs Insights queries.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.log_scan_budget_used = Gauge(
            "log_scan_budget_used_bytes",
            "Bytes scanned today (UTC) by every replica's log queries, as last read; the budget "
            "is shared.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.log_anomalies = Counter(
            "log_anomalies",
            "Log pattern anomalies found, by kind (spike, level_shift, new_template).",
            ["kind"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.proactive_alerts = Counter(
            "proactive_alerts",
            "Proactive alerts sent (failure probability above the threshold).",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.proactive_alerts_unsent = Counter(
            "proactive_alerts_unsent",
            "Proactive alerts SNS did not take: each stays stored with its window and is sent "
            "again before the group's next window.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.failure_probability = Gauge(
            "log_failure_probability",
            "Latest failure probability per configured log group (a bounded, configured set).",
            ["log_group"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.log_templates = Gauge(
            "log_templates",
            "Templates with a baseline, per configured log group.",
            ["log_group"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.console_auth_refusals = Counter(
            "console_auth_refusals",
            "Console requests refused: no or bad credentials (auth, signin), "
            "or no valid CSRF token (csrf).",
            ["reason"],
            namespace=NAMESPACE,
            registry=reg,
        )
        self.console_reviews = Counter(
            "console_reviews",
            "Answers to manual reviews sent from the console, by answer and outcome "
            "(applied, or refused because another answer came first or none was awaited).",
            ["answer", "outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )

        # -- who decides (autonomy, silences, freezes, the pause) -------------------------------
        self.paused = Gauge(
            "paused",
            "1 while the agent is paused (the kill switch), as this replica last read it.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.active_silences = Gauge(
            "silences_active",
            "Silences in force, as this replica last read them.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.active_freezes = Gauge(
            "freezes_active",
            "Change freezes in force (own ones and CLOSED change calendars), as last read.",
            namespace=NAMESPACE,
            registry=reg,
        )
        self.policy_decisions = Counter(
            "policy_decisions",
            "Policy decisions, by outcome (silenced, off, notify, ask, act).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=reg,
        )
        for outcome in POLICY_OUTCOMES:
            self.policy_decisions.labels(outcome=outcome)

        self.build_info.labels(version=__version__, python=platform.python_version()).set(1)
        # Series that alert rules take increase() of exist from the start at 0, so the first
        # failure after a restart is an increase and not the birth of a series.
        for outcome in sorted(TERMINAL_OUTCOMES):
            for resource_type in sorted(RESOURCE_TYPES):
                self.incidents.labels(outcome=outcome, resource_type=resource_type)
        for reason in sorted(DEAD_LETTER_REASONS):
            self.dead_lettered.labels(reason=reason)
        for outcome in sorted(MESSAGE_OUTCOMES):
            self.messages.labels(outcome=outcome)
        for operation in sorted(SQS_OPERATIONS):
            self.sqs_failures.labels(operation=operation)

    # -- rendering -----------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The exposition payload and its content type, for `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- hooks and conveniences ----------------------------------------------------------------

    def on_aws_call(self, service: str, operation: str, outcome: str) -> None:
        """`aiops_agent.aws.clients.CallHook`: counts one AWS API call."""
        self.aws_calls.labels(service=service, operation=operation, outcome=outcome).inc()

    def event_received(self, resource_type: str) -> None:
        self.events_received.labels(resource_type=bounded(resource_type, RESOURCE_TYPES)).inc()

    def event_kind(self, source: str, detail_type: str, *, generic: bool) -> None:
        """One event handled, counted by its kind (bounded labels: unknown ones are `other`)."""
        self.event_kinds.labels(
            source=bounded(source, KNOWN_EVENT_SOURCES),
            detail_type=bounded(detail_type, KNOWN_DETAIL_TYPES),
            normalizer="generic" if generic else "specific",
        ).inc()

    def classified(self, classification: str, resource_type: str) -> None:
        self.classifications.labels(
            classification=classification,
            resource_type=bounded(resource_type, RESOURCE_TYPES),
        ).inc()

    def incident_closed(self, outcome: str, resource_type: str, duration_s: float) -> None:
        """One incident reached a terminal state after `duration_s` seconds."""
        rtype = bounded(resource_type, RESOURCE_TYPES)
        state = bounded(outcome, TERMINAL_OUTCOMES)
        self.incidents.labels(outcome=state, resource_type=rtype).inc()
        self.recovery_duration.labels(resource_type=rtype, outcome=state).observe(
            max(duration_s, 0.0)
        )

    def manual_review(self, resource_type: str) -> None:
        self.manual_reviews.labels(resource_type=bounded(resource_type, RESOURCE_TYPES)).inc()

    def verification(self, resource_type: str, result: str) -> None:
        self.verifications.labels(
            resource_type=bounded(resource_type, RESOURCE_TYPES), result=result
        ).inc()

    def message_dead_lettered(self, reason: str) -> None:
        """One message sent to the DLQ: counts both the reason and the message outcome."""
        self.dead_lettered.labels(reason=bounded(reason, DEAD_LETTER_REASONS)).inc()
        self.messages.labels(outcome="dead_lettered").inc()

    def console_refused(self, reason: str) -> None:
        self.console_auth_refusals.labels(reason=bounded(reason, CONSOLE_REFUSALS)).inc()

    def console_review(self, answer: str, outcome: str) -> None:
        self.console_reviews.labels(
            answer=bounded(answer, CONSOLE_ANSWERS), outcome=bounded(outcome, CONSOLE_OUTCOMES)
        ).inc()

    def message_handled(self, outcome: str) -> None:
        """`deleted` or `released` (for a dead-lettered one, use `message_dead_lettered`)."""
        self.messages.labels(outcome=bounded(outcome, MESSAGE_OUTCOMES)).inc()

    def sqs_failure(self, operation: str) -> None:
        """A queue operation around the handler failed (logged by the caller) and was survived."""
        self.sqs_failures.labels(operation=bounded(operation, SQS_OPERATIONS)).inc()

    def policy_decided(self, decision: PolicyDecision) -> None:
        outcome = "silenced" if decision.silence_id else decision.autonomy.value
        self.policy_decisions.labels(outcome=outcome).inc()

    def control_state(self, *, paused: bool, silences: int) -> None:
        self.paused.set(1 if paused else 0)
        self.active_silences.set(silences)
