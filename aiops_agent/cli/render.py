"""Plain-text tables for people: incident timelines and lists."""

from __future__ import annotations

from collections.abc import Sequence

from aiops_agent.domain.models import Incident


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], max_width: int = 90) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [min(max_width, max(len(r[i]) for r in cells)) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c[:max_width].ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def incident_header(incident: Incident) -> str:
    cls = incident.classification.value if incident.classification else "-"
    conf = f" ({incident.confidence:.2f})" if incident.confidence is not None else ""
    return (
        f"{incident.incident_id}  {incident.resource_type} {incident.resource_id}  "
        f"{cls}{conf}  -> {incident.workflow_state.value}"
    )


def incident_timeline(incident: Incident) -> str:
    rows = [(e.at.strftime("%H:%M:%S.%f")[:-3], e.state.value, e.detail) for e in incident.timeline]
    parts = [incident_header(incident), _table(("TIME", "STATE", "DETAIL"), rows)]
    if incident.recovery_actions:
        actions = [(r.action, r.status, r.detail) for r in incident.recovery_actions]
        parts.append(_table(("ACTION", "STATUS", "DETAIL"), actions))
    if incident.verification is not None:
        v = incident.verification
        parts.append(f"verification: {v.status} after {v.attempts} check(s): {v.detail}")
    return "\n".join(parts)


def incident_list(incidents: Sequence[Incident]) -> str:
    rows = [
        (
            i.incident_id,
            i.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            i.resource_type,
            i.resource_id,
            i.classification.value if i.classification else "-",
            i.workflow_state.value,
        )
        for i in incidents
    ]
    return _table(("INCIDENT", "CREATED", "TYPE", "RESOURCE", "CLASS", "STATE"), rows)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], max_width: int = 90) -> str:
    """A plain-text table: headers, a rule, the rows (cells cut at `max_width`)."""
    return _table(headers, rows, max_width)
