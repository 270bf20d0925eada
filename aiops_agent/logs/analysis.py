"""From one analyzed window to a proactive alert: anomalies, failure probability, the message.

Pure logic. Only anomalies reach this module (the detector already dropped the rest). The rules
give a failure probability from the template's severity words and the anomaly's size; a Bedrock
analyzer can later implement the same `assess` signature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

AnomalyKind = Literal["spike", "level_shift", "new_template"]

_SEVERITY: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.95, ("fatal", "panic", "critical", "out of memory", "oom", "killed", "corrupt")),
    (
        0.85,
        (
            "error",
            "exception",
            "traceback",
            "fail",
            "refused",
            "denied",
            "timeout",
            "timed out",
            "unavailable",
            "unreachable",
            "abort",
        ),
    ),
    (0.5, ("warn",)),
)
_DEFAULT_SEVERITY = 0.3


@dataclass(frozen=True)
class Anomaly:
    log_group: str
    template_id: str
    template: str
    kind: AnomalyKind
    count: int
    """Occurrences in the window."""
    baseline_median: float
    baseline_max: float
    history_windows: int
    score: float
    level: float = 0.0
    """For `level_shift`: the hourly median now; the baseline fields then describe past levels."""


@dataclass(frozen=True)
class Assessment:
    failure_probability: float
    root_cause: str
    recommended_action: str
    urgency: Literal["low", "medium", "high"]
    analyzer: str = "rules"
    """Who assessed: `rules`, `bedrock-logs`, or a rules fallback with its reason."""


def severity(template: str) -> float:
    lower = template.lower()
    for weight, words in _SEVERITY:
        if any(word in lower for word in words):
            return weight
    return _DEFAULT_SEVERITY


def anomaly_probability(anomaly: Anomaly, min_count: int) -> float:
    """One anomaly's failure probability: severity x (0.6 .. 1.0 by the anomaly's size)."""
    if anomaly.kind == "new_template":
        size = min(1.0, anomaly.count / (4.0 * max(min_count, 1)))
    else:
        now = anomaly.level if anomaly.kind == "level_shift" else anomaly.count
        ratio = now / max(anomaly.baseline_max, 1.0)
        size = min(1.0, math.log2(max(ratio, 1.0)) / 3.0)
    return severity(anomaly.template) * (0.6 + 0.4 * size)


def assess(anomalies: Sequence[Anomaly], min_count: int) -> Assessment:
    """Rules: the group fails if any of its anomalies does (independent, noisy-or)."""
    if not anomalies:
        return Assessment(0.0, "no anomaly", "none", "low")
    survive = 1.0
    for anomaly in anomalies:
        survive *= 1.0 - anomaly_probability(anomaly, min_count)
    probability = round(min(0.99, 1.0 - survive), 3)
    worst = max(anomalies, key=lambda a: anomaly_probability(a, min_count))
    what = {
        "new_template": "a never-seen message shape",
        "level_shift": "a sustained rise",
        "spike": "a surge",
    }[worst.kind]
    urgency: Literal["low", "medium", "high"] = (
        "high" if probability >= 0.85 else "medium" if probability >= 0.6 else "low"
    )
    return Assessment(
        failure_probability=probability,
        root_cause=f"{what} in {worst.log_group}: {worst.template[:200]}",
        recommended_action=(
            "inspect the log group around the window and the component that emits this "
            "message before it turns into an outage"
        ),
        urgency=urgency,
    )


def alert_text(
    log_group: str,
    window_start_ms: int,
    window_end_ms: int,
    anomalies: Sequence[Anomaly],
    assessment: Assessment,
) -> tuple[str, str]:
    """(subject, message) of a proactive alert."""
    start = datetime.fromtimestamp(window_start_ms / 1000, UTC).isoformat()
    end = datetime.fromtimestamp(window_end_ms / 1000, UTC).isoformat()
    subject = (
        f"[aiops-agent] PROACTIVE alert: {log_group} failure probability "
        f"{assessment.failure_probability:.2f}"
    )
    lines = [
        "PROACTIVE alert: log patterns departed from their baseline before any failure event.",
        f"log group: {log_group}",
        f"window: {start} .. {end}",
        f"failure probability: {assessment.failure_probability:.2f} ({assessment.urgency})",
        f"likely cause: {assessment.root_cause}",
        f"recommended action: {assessment.recommended_action}",
        f"assessed by: {assessment.analyzer}",
        "",
    ]
    for a in anomalies:
        if a.kind == "level_shift":
            lines.append(
                f"- {a.kind} template {a.template_id}: {a.count} in this window, level (median "
                f"of the last hour) {a.level:g}; baseline level median {a.baseline_median:g}, "
                f"max {a.baseline_max:g} over {a.history_windows} windows (score {a.score:.1f})"
            )
            lines.append(f"  template: {a.template[:500]}")
            continue
        lines.append(
            f"- {a.kind} template {a.template_id}: {a.count} in this window; baseline median "
            f"{a.baseline_median:g}, max {a.baseline_max:g} over {a.history_windows} windows "
            f"(score {a.score:.1f})"
        )
        lines.append(f"  template: {a.template[:500]}")
    return subject, "\n".join(lines)
