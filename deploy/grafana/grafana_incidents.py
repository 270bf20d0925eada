"""The incidents dashboard: rate by resource type, success rate, recovery duration, workflow."""

from __future__ import annotations

from grafana_panels import (
    RATE,
    Layout,
    Panel,
    dashboard,
    heatmap,
    quantiles,
    stat,
    table,
    timeseries,
)


def incidents() -> Panel:
    ly = Layout()
    closed = 'outcome=~"COMPLETED|PARTIAL|FAILED"'
    ly.row("Overview")
    ly.add(
        stat(
            "Recovery success rate (24h)",
            "COMPLETED among incidents that ran a recovery (COMPLETED, PARTIAL, FAILED).",
            'sum(increase(aiops_incidents_total{outcome="COMPLETED"}[24h])) / '
            f"sum(increase(aiops_incidents_total{{{closed}}}[24h]))",
            unit="percentunit",
            thresholds=((0, "red"), (0.8, "orange"), (0.95, "green")),
            decimals=1,
        ),
        w=6,
        h=5,
    )
    ly.add(
        stat(
            "Incidents closed (24h)",
            "Incidents that reached a terminal state in the last 24 hours.",
            "sum(increase(aiops_incidents_total[24h]))",
            decimals=0,
        ),
        w=6,
        h=5,
    )
    ly.add(
        stat(
            "In flight",
            "Incidents with a step running now, over all replicas.",
            "sum(aiops_incidents_in_flight)",
        ),
        w=4,
        h=5,
    )
    ly.add(
        stat(
            "Failed (10m)",
            "Incidents that ended FAILED in the last 10 minutes (alert: more than 3).",
            'sum(increase(aiops_incidents_total{outcome="FAILED"}[10m]))',
            thresholds=((0, "green"), (1, "orange"), (3.5, "red")),
            decimals=0,
        ),
        w=4,
        h=5,
    )
    ly.add(
        stat(
            "Breakers open",
            "Circuit breakers open now (analyzer, recovery).",
            "sum(max by (breaker) (aiops_breaker_open))",
            thresholds=((0, "green"), (1, "red")),
        ),
        w=4,
        h=5,
    )

    ly.row("Incidents")
    ly.add(
        timeseries(
            "Incident rate by resource type",
            "Incidents reaching a terminal state per second, by resource type.",
            [
                (
                    f"sum by (resource_type) (rate(aiops_incidents_total[{RATE}]))",
                    "{{resource_type}}",
                )
            ],
            unit="ops",
            stacked=True,
        )
    )
    ly.add(
        timeseries(
            "Outcomes",
            "Terminal states reached, per interval.",
            [(f"sum by (outcome) (increase(aiops_incidents_total[{RATE}]))", "{{outcome}}")],
            stacked=True,
        )
    )
    ly.add(
        timeseries(
            "Recovery success rate by resource type",
            "COMPLETED / (COMPLETED + PARTIAL + FAILED) over the last hour.",
            [
                (
                    "sum by (resource_type) "
                    '(increase(aiops_incidents_total{outcome="COMPLETED"}[1h])) / '
                    f"sum by (resource_type) (increase(aiops_incidents_total{{{closed}}}[1h]))",
                    "{{resource_type}}",
                )
            ],
            unit="percentunit",
            maximum=1,
        )
    )
    ly.add(
        timeseries(
            "Classifications",
            "Analyses by classification.",
            [
                (
                    f"sum by (classification) (rate(aiops_classifications_total[{RATE}]))",
                    "{{classification}}",
                )
            ],
            unit="ops",
            stacked=True,
        )
    )

    ly.row("Recovery")
    ly.add(
        timeseries(
            "Recovery duration (completed)",
            "From an incident's creation to COMPLETED: quantiles.",
            quantiles("aiops_recovery_duration_seconds", where='{outcome="COMPLETED"}'),
            unit="s",
        )
    )
    ly.add(
        heatmap(
            "Recovery duration distribution",
            "Time to a terminal state, all outcomes.",
            f"sum by (le) (increase(aiops_recovery_duration_seconds_bucket[{RATE}]))",
            unit="s",
        )
    )
    ly.add(
        timeseries(
            "Recovery actions by action and outcome",
            "Catalog actions run.",
            [
                (
                    f"sum by (action, outcome) (rate(aiops_recovery_actions_total[{RATE}]))",
                    "{{action}} {{outcome}}",
                )
            ],
            unit="ops",
        )
    )
    ly.add(
        timeseries(
            "Verification results",
            "Checks after a recovery, by result.",
            [
                (
                    f"sum by (result) (rate(aiops_verification_results_total[{RATE}]))",
                    "{{result}}",
                )
            ],
            unit="ops",
            stacked=True,
        )
    )

    ly.row("Workflow")
    ly.add(
        timeseries(
            "Workflow transitions by target state",
            "State changes per second, by the state entered.",
            [
                (
                    f"sum by (to_state) (rate(aiops_workflow_transitions_total[{RATE}]))",
                    "{{to_state}}",
                )
            ],
            unit="ops",
            stacked=True,
        ),
        w=16,
    )
    ly.add(
        table(
            "Transitions in the time range",
            "from_state -> to_state, counted over the dashboard's range.",
            "sum by (from_state, to_state) "
            "(increase(aiops_workflow_transitions_total[$__range])) > 0",
        ),
        w=8,
    )
    ly.add(
        timeseries(
            "Suppressions and manual reviews",
            "Cooldown, dedup and breaker suppressions by reason; incidents sent to review.",
            [
                (f"sum by (reason) (rate(aiops_suppressions_total[{RATE}]))", "{{reason}}"),
                (f"sum(rate(aiops_manual_reviews_total[{RATE}]))", "manual review"),
            ],
            unit="ops",
        )
    )
    ly.add(
        timeseries(
            "Invalid signals",
            "Signals the workflow refused in the incident's state (should stay at zero).",
            [
                (
                    f"sum by (state, signal) (rate(aiops_invalid_signals_total[{RATE}]))",
                    "{{state}} {{signal}}",
                )
            ],
            unit="ops",
        )
    )

    ly.row("Intake")
    ly.add(
        timeseries(
            "Events received and rejected",
            "Events taken from the queue by resource type; refused ones by reason.",
            [
                (
                    f"sum by (resource_type) (rate(aiops_events_received_total[{RATE}]))",
                    "{{resource_type}}",
                ),
                (
                    f"sum by (reason) (rate(aiops_events_rejected_total[{RATE}]))",
                    "rejected: {{reason}}",
                ),
            ],
            unit="ops",
        )
    )
    ly.add(
        timeseries(
            "Queue messages",
            "Messages deleted, released, retried and dead-lettered (by reason).",
            [
                (f"sum by (outcome) (rate(aiops_sqs_messages_total[{RATE}]))", "{{outcome}}"),
                (
                    f"sum by (reason) (rate(aiops_messages_dead_lettered_total[{RATE}]))",
                    "dead-lettered: {{reason}}",
                ),
            ],
            unit="ops",
        )
    )
    ly.add(
        timeseries(
            "Queue lag",
            "Age of a message when received (now - SentTimestamp).",
            quantiles("aiops_sqs_message_age_seconds"),
            unit="s",
        )
    )
    ly.add(
        timeseries(
            "Step duration (p90) by command",
            "Duration of one workflow step.",
            [
                (
                    "histogram_quantile(0.9, sum by (le, command) "
                    f"(rate(aiops_step_duration_seconds_bucket[{RATE}])))",
                    "{{command}}",
                )
            ],
            unit="s",
        )
    )

    ly.row("Process")
    ly.add(
        timeseries(
            "Loop heartbeat age",
            "Seconds since each daemon loop last beat (alert above 300 s; /healthz fails).",
            [
                (
                    "time() - max by (instance, loop) (aiops_loop_last_beat_timestamp_seconds)",
                    "{{instance}} {{loop}}",
                )
            ],
            unit="s",
            thresholds=((0, "green"), (300, "red")),
        ),
        w=8,
    )
    ly.add(
        timeseries(
            "AWS API errors",
            "Calls that did not succeed, by service and error code.",
            [
                (
                    "sum by (service, outcome) "
                    f'(rate(aiops_aws_api_calls_total{{outcome!="ok"}}[{RATE}]))',
                    "{{service}} {{outcome}}",
                )
            ],
            unit="ops",
        ),
        w=8,
    )
    ly.add(
        table(
            "Builds running",
            "Version and Python of each scraped agent.",
            "max by (instance, version, python) (aiops_build_info)",
        ),
        w=8,
    )
    return dashboard(
        "aiops-incidents",
        "aiops-agent: incidents",
        "Incidents by resource type and outcome, recovery duration, workflow transitions, intake.",
        ly,
        ["incidents"],
    )
