"""Panel helpers for the provisioned Grafana dashboards (used by generate.py).

Every panel gets the provisioned datasource (`DATASOURCE_UID`, the uid in
provisioning/datasources/prometheus.yml) and a place on Grafana's 24-column grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DATASOURCE_UID = "aiops-prometheus"
"""The uid of the datasource in provisioning/datasources/prometheus.yml."""
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
RATE = "$__rate_interval"

Panel = dict[str, Any]


class Layout:
    """Places panels left to right on a 24-column grid, wrapping to a new row."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1
        self.panels: list[Panel] = []

    def add(self, panel: Panel, w: int = 12, h: int = 8) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append(
            {
                "id": self.next_id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.next_id += 1
        self.y += 1


def _targets(queries: Sequence[tuple[str, str]], *, instant: bool = False) -> list[Panel]:
    return [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": legend,
            "range": not instant,
            "instant": instant,
        }
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(
    title: str,
    description: str,
    queries: Sequence[tuple[str, str]],
    *,
    unit: str = "short",
    stacked: bool = False,
    thresholds: Sequence[tuple[float, str]] = (),
    minimum: float | None = 0,
    maximum: float | None = None,
) -> Panel:
    defaults: Panel = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if stacked else 0,
            "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
            "showPoints": "never",
            "spanNulls": False,
        },
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if thresholds:
        defaults["thresholds"] = threshold_steps(thresholds)
        defaults["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets(queries),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    thresholds: Sequence[tuple[float, str]] = ((0, "green"),),
    decimals: int | None = None,
) -> Panel:
    defaults: Panel = {"unit": unit, "thresholds": threshold_steps(thresholds)}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets([(expr, "")], instant=True),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value",
        },
    }


def heatmap(title: str, description: str, expr: str, *, unit: str) -> Panel:
    target = _targets([(expr, "{{le}}")])[0]
    target["format"] = "heatmap"
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "calculate": False,
            "yAxis": {"unit": unit},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "tooltip": {"show": True, "yHistogram": True},
        },
    }


def bars(title: str, description: str, expr: str, legend: str, *, unit: str = "short") -> Panel:
    """A bar gauge of an instant vector, one bar per series (a distribution, a top list)."""
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [{**_targets([(expr, legend)], instant=True)[0], "format": "time_series"}],
        "fieldConfig": {
            "defaults": {"unit": unit, "min": 0, "thresholds": threshold_steps(((0, "blue"),))},
            "overrides": [],
        },
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
        },
    }


def table(title: str, description: str, expr: str) -> Panel:
    target = {**_targets([(expr, "")], instant=True)[0], "format": "table"}
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
        "transformations": [
            {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {}}}
        ],
    }


def threshold_steps(steps: Sequence[tuple[float, str]]) -> Panel:
    result: list[Panel] = []
    for i, (value, color) in enumerate(steps):
        result.append({"color": color, "value": None if i == 0 else value})
    return {"mode": "absolute", "steps": result}


def quantiles(metric: str, by: str = "", where: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{where}[{RATE}])))",
            f"{prefix}p{round(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def dashboard(uid: str, title: str, description: str, layout: Layout, tags: list[str]) -> Panel:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["aiops", *tags],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [{"type": "dashboards", "tags": ["aiops"], "asDropdown": True, "title": "aiops"}],
        "panels": layout.panels,
    }
