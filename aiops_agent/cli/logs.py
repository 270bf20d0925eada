"""The offline commands `logs mine FILE [--jsonl]` and `detect SERIES.csv [--jsonl]`.

Both print to stdout and return the exit code: 0, or 2 when the input cannot be read (with one
line on stderr). They run the analyzer's own miner and detector with their default configuration.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from aiops_agent.logs.detector import Detector, DetectorConfig, typical_window
from aiops_agent.logs.mining import TemplateMiner


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def logs_mine(path: Path, jsonl: bool) -> int:
    """Mine `path` line by line; `--jsonl`: one object per line, else a table by count."""
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")
    miner = TemplateMiner()
    assigned: list[str] = []
    with handle:
        for raw in handle:
            assigned.append(miner.add(raw.rstrip("\r\n")).template_id)
    # A cluster merged into another after a line was mined: the line gets the survivor's id.
    assigned = [miner.clusters[tid].template_id for tid in assigned]
    out = sys.stdout
    if jsonl:
        for number, tid in enumerate(assigned, start=1):
            template = miner.clusters[tid].template
            out.write(json.dumps({"line": number, "template_id": tid, "template": template}) + "\n")
        return 0
    counts = Counter(assigned)
    out.write(f"{len(assigned)} lines, {len(counts)} templates\n")
    out.write(f"{'count':>8}  {'template_id':12}  template\n")
    for tid, n in counts.most_common():
        out.write(f"{n:>8}  {tid:12}  {miner.clusters[tid].template}\n")
    return 0


DEFAULT_WINDOW_SECONDS = 300.0
"""The analyzer's default window (AIOPS_LOG_POLL_SECONDS), for timestamps that do not parse."""


def window_seconds(stamps: list[str]) -> float:
    """The series' window length: the median gap between its timestamps (ISO 8601), or the
    analyzer's default window when they do not parse or do not move forward."""
    try:
        parsed = [datetime.fromisoformat(s.strip()) for s in stamps]
        return typical_window(parsed) or DEFAULT_WINDOW_SECONDS
    except (TypeError, ValueError):
        return DEFAULT_WINDOW_SECONDS


def detect(path: Path, jsonl: bool) -> int:
    """Run the detector over a `timestamp,value` CSV (oldest first, one row per window).

    The detector's default configuration counts spans of time (two days of history, a day's
    season) in windows; the window is the median gap between the timestamps."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")
    if rows and rows[0] and rows[0][0].strip().lower() == "timestamp":
        rows = rows[1:]
    parsed: list[tuple[str, float]] = []
    for number, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            stamp, value = row[0], float(row[1])
        except (IndexError, ValueError):
            return _fail(f"{path}:{number}: expected timestamp,value")
        if not math.isfinite(value):
            return _fail(f"{path}:{number}: value is not a finite number")
        parsed.append((stamp, value))
    detector = Detector(DetectorConfig.for_window(window_seconds([s for s, _ in parsed])))
    state = detector.new_state()
    alerts = 0
    out = sys.stdout
    for stamp, value in parsed:
        verdict = detector.update(state, value)
        alerts += verdict.anomaly
        if jsonl:
            obj = {
                "timestamp": stamp,
                "value": value,
                "score": round(verdict.score, 4),
                "anomaly": verdict.anomaly,
            }
            out.write(json.dumps(obj) + "\n")
        elif verdict.anomaly:
            out.write(f"{stamp}  value {value:g}  score {verdict.score:.2f}  ANOMALY\n")
    if not jsonl:
        out.write(f"{state.seen} rows, {alerts} alerts\n")
    return 0
