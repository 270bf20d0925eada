"""The log analyzer and AI performance dashboards."""

from __future__ import annotations

from grafana_panels import (
    RATE,
    Layout,
    Panel,
    bars,
    dashboard,
    quantiles,
    stat,
    timeseries,
)


def log_analyzer() -> Panel:
    ly = Layout()
    ly.row("Predictions")
    ly.add(
        timeseries(
            "Failure probability per log group",
            "The analyzer's latest failure probability; a proactive alert goes out above the "
            "threshold (AIOPS_FAILURE_PROBABILITY_THRESHOLD, 0.7 by default).",
            [("max by (log_group) (aiops_log_failure_probability)", "{{log_group}}")],
            unit="percentunit",
            maximum=1,
            thresholds=((0, "green"), (0.7, "red")),
        ),
        w=16,
    )
    ly.add(
        stat(
            "Proactive alerts (24h)",
            "Alerts sent because a failure probability crossed the threshold.",
            "sum(increase(aiops_proactive_alerts_total[24h]))",
            thresholds=((0, "green"), (1, "orange")),
            decimals=0,
        ),
        w=8,
    )
    ly.add(
        timeseries(
            "Anomalies by kind",
            "Error-pattern spikes and templates never seen before, per interval.",
            [(f"sum by (kind) (increase(aiops_log_anomalies_total[{RATE}]))", "{{kind}}")],
            stacked=True,
        )
    )
    ly.add(
        timeseries(
            "Proactive alerts",
            "Alerts sent, per interval.",
            [(f"sum(increase(aiops_proactive_alerts_total[{RATE}]))", "alerts")],
        )
    )

    ly.row("Baseline")
    ly.add(
        timeseries(
            "Templates with a baseline per log group",
            "How many log templates each group's baseline knows; a step up is new behaviour.",
            [("max by (log_group) (aiops_log_templates)", "{{log_group}}")],
        )
    )
    ly.add(
        timeseries(
            "Baseline drift: new templates",
            "Templates never seen before, per hour: a baseline that keeps growing is drifting.",
            [
                (
                    'sum(increase(aiops_log_anomalies_total{kind="new_template"}[1h]))',
                    "new templates / h",
                ),
                ("sum(delta(aiops_log_templates[1h]))", "baseline size change / h"),
            ],
            minimum=None,
        )
    )

    ly.row("Cost and health")
    ly.add(
        timeseries(
            "Bytes scanned by Logs Insights",
            "CloudWatch Logs Insights bills by bytes scanned.",
            [(f"sum(rate(aiops_log_bytes_scanned_total[{RATE}]))", "bytes/s")],
            unit="Bps",
        )
    )
    ly.add(
        stat(
            "Bytes scanned (24h)",
            "Bytes scanned in the last 24 hours.",
            "sum(increase(aiops_log_bytes_scanned_total[24h]))",
            unit="bytes",
        ),
        w=6,
    )
    ly.add(
        stat(
            "Windows failing (1h)",
            "Log windows that timed out or failed in the last hour.",
            'sum(increase(aiops_log_windows_analyzed_total{outcome=~"timeout|error"}[1h]))',
            thresholds=((0, "green"), (1, "orange")),
            decimals=0,
        ),
        w=6,
    )
    ly.add(
        timeseries(
            "Log windows analyzed by outcome",
            "ok, empty, timeout, error.",
            [
                (
                    f"sum by (outcome) (increase(aiops_log_windows_analyzed_total[{RATE}]))",
                    "{{outcome}}",
                )
            ],
            stacked=True,
        )
    )
    ly.add(
        timeseries(
            "Logs API calls",
            "CloudWatch Logs calls by operation and outcome.",
            [
                (
                    "sum by (operation, outcome) "
                    f'(rate(aiops_aws_api_calls_total{{service="logs"}}[{RATE}]))',
                    "{{operation}} {{outcome}}",
                )
            ],
            unit="ops",
        )
    )
    return dashboard(
        "aiops-log-analyzer",
        "aiops-agent: log analyzer",
        "Proactive log analysis: anomalies, failure probability, alerts, baselines, cost.",
        ly,
        ["logs"],
    )


def ai_performance() -> Panel:
    ly = Layout()
    ly.row("Overview")
    ly.add(
        stat(
            "Fallback ratio (1h)",
            "Share of model requests where the rules decided instead (errors, invalid "
            "answers, throttling, breaker open).",
            "sum(increase(aiops_analyzer_fallbacks_total[1h])) / "
            'sum(increase(aiops_analyzer_requests_total{analyzer!="rules"}[1h]))',
            unit="percentunit",
            thresholds=((0, "green"), (0.1, "orange"), (0.25, "red")),
            decimals=1,
        ),
        w=6,
        h=5,
    )
    ly.add(
        stat(
            "Model cost (24h)",
            "Estimated from the tokens used.",
            "sum(increase(aiops_analyzer_cost_dollars_total[24h]))",
            unit="currencyUSD",
            decimals=2,
        ),
        w=6,
        h=5,
    )
    ly.add(
        stat(
            "Tokens (24h)",
            "Input and output tokens.",
            "sum(increase(aiops_analyzer_tokens_total[24h]))",
            unit="short",
            decimals=0,
        ),
        w=6,
        h=5,
    )
    ly.add(
        stat(
            "Analyzer breaker",
            "1 while the analyzer's circuit breaker is open (the rules decide alone).",
            'max(aiops_breaker_open{breaker="analyzer"})',
            thresholds=((0, "green"), (1, "red")),
        ),
        w=6,
        h=5,
    )

    ly.row("Latency and requests")
    ly.add(
        timeseries(
            "Analyzer latency",
            "Request latency quantiles by analyzer.",
            quantiles("aiops_analyzer_latency_seconds", by="analyzer"),
            unit="s",
        )
    )
    ly.add(
        timeseries(
            "Requests by outcome",
            "ok, error, invalid, throttled, cached.",
            [
                (
                    f"sum by (analyzer, outcome) (rate(aiops_analyzer_requests_total[{RATE}]))",
                    "{{analyzer}} {{outcome}}",
                )
            ],
            unit="ops",
            stacked=True,
        )
    )
    ly.add(
        timeseries(
            "Fallbacks by reason",
            "Times the rules decided instead of the model.",
            [
                (
                    f"sum by (reason) (increase(aiops_analyzer_fallbacks_total[{RATE}]))",
                    "{{reason}}",
                )
            ],
            stacked=True,
        )
    )
    ly.add(
        timeseries(
            "Breakers",
            "1 while open.",
            [("max by (breaker) (aiops_breaker_open)", "{{breaker}}")],
            maximum=1,
        )
    )

    ly.row("Tokens, cost, confidence")
    ly.add(
        timeseries(
            "Tokens by direction",
            "Model tokens per second.",
            [
                (
                    f"sum by (direction) (rate(aiops_analyzer_tokens_total[{RATE}]))",
                    "{{direction}}",
                )
            ],
            stacked=True,
        )
    )
    ly.add(
        timeseries(
            "Cost per hour",
            "Estimated model spend, in US dollars per hour.",
            [
                (
                    "sum by (analyzer) (increase(aiops_analyzer_cost_dollars_total[1h]))",
                    "{{analyzer}}",
                )
            ],
            unit="currencyUSD",
        )
    )
    ly.add(
        bars(
            "Confidence distribution (24h)",
            "Classifications per confidence bucket (cumulative: at most `le`).",
            "sum by (le) (increase(aiops_analyzer_confidence_bucket[24h]))",
            "≤ {{le}}",
        )
    )
    ly.add(
        timeseries(
            "Median confidence by analyzer",
            "Below AIOPS_CONFIDENCE_THRESHOLD (0.8), incidents go to manual review.",
            [
                (
                    "histogram_quantile(0.5, sum by (le, analyzer) "
                    f"(rate(aiops_analyzer_confidence_bucket[{RATE}])))",
                    "{{analyzer}}",
                )
            ],
            unit="percentunit",
            maximum=1,
            thresholds=((0, "red"), (0.8, "green")),
        )
    )
    return dashboard(
        "aiops-ai-performance",
        "aiops-agent: AI performance",
        "The analyzer: latency, tokens, cost, fallbacks to the rules, confidence.",
        ly,
        ["ai"],
    )
