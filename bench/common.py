"""What every benchmark shares: machine facts, result files, percentiles and the event generators.

Pure and fast: nothing here starts a process or opens a socket (harness.py does), so the unit
tests cover all of it.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import random
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
DOCS_FILE = ROOT / "docs" / "BENCHMARKS.md"
LOG_DIR = Path(tempfile.gettempdir()) / "aiops-bench-logs"
"""The daemons' own log files (read back for latencies): not results, not kept in the repo."""

Kind = Literal["normal", "recovered", "duplicate", "review"]
KINDS: tuple[Kind, ...] = ("normal", "duplicate", "recovered", "review")

MIX_PATTERN: tuple[Kind, ...] = (
    "normal",
    "recovered",
    "normal",
    "normal",
    "review",
    "normal",
    "recovered",
    "normal",
    "duplicate",
    "normal",
)
"""The pipeline's workload, repeated: 60 % normal, 20 % recovered, 10 % duplicate, 10 % review."""


# ---------------------------------------------------------------- machine and results


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def machine_facts() -> dict[str, Any]:
    """What the numbers ran on: they mean little without it."""
    memory_mb: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_mb": memory_mb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moto": _version("moto"),
        "aiobotocore": _version("aiobotocore"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


GENERATED = ("bench/results/", "docs/BENCHMARKS.md")
"""What the benchmarks write: changes there do not make the code measured differ from HEAD."""


def code_version(root: Path = ROOT) -> dict[str, Any]:
    """The commit the numbers were measured on, and whether the code differed from it.

    `dirty` lists changed tracked files outside the benchmarks' own output, so a result
    measured on uncommitted code says so instead of passing for the commit's.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": []}
    dirty = sorted(
        path
        for path in (line[3:] for line in status.splitlines() if line.strip())
        if not path.startswith(GENERATED)
    )
    return {"commit": commit, "dirty": dirty}


def write_result(name: str, payload: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """`bench/results/<name>.json`: the payload with the machine facts and the commit beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    document = {"benchmark": name, "code": code_version(), "machine": machine_facts(), **payload}
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def read_result(name: str, directory: Path = RESULTS_DIR) -> dict[str, Any] | None:
    path = directory / f"{name}.json"
    if not path.exists():
        return None
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


# ---------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (numpy's)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p90, p99, max and mean of `values` (rounded to the millisecond scale)."""
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 4),
        "p90": round(percentile(values, 90), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "mean": round(sum(values) / len(values), 4),
    }


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' `histogram_quantile` over cumulative `(upper_bound, count)` buckets.

    Linear interpolation inside the bucket; the +Inf bucket answers its lower bound.
    """
    if not 0 <= q <= 1:
        raise ValueError("q must be within 0..1")
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return ordered[-1][0]


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


# ---------------------------------------------------------------- events


def instance_id(rng: random.Random) -> str:
    return "i-" + "".join(rng.choice("0123456789abcdef") for _ in range(17))


def ec2_event(
    instance: str,
    state: str,
    *,
    event_id: str | None = None,
    replay_name: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An EventBridge `EC2 Instance State-change Notification` envelope."""
    event: dict[str, Any] = {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "time": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"],
        "detail": {"instance-id": instance, "state": state},
    }
    if replay_name is not None:
        event["replay-name"] = replay_name
    return event


@dataclass(frozen=True)
class Feed:
    """One message to put on the queue, and what the daemon should make of it."""

    kind: Kind
    event_id: str
    body: str

    @property
    def key(self) -> str:
        """Unique per feed: a duplicate shares its event id with the original."""
        return f"{self.kind}:{self.event_id}"


def make_event(kind: Kind, rng: random.Random) -> Feed:
    """A fresh event of `kind` (not `duplicate`: a duplicate is an earlier feed sent again)."""
    instance = instance_id(rng)
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if kind == "normal":
        event = ec2_event(instance, "running", event_id=event_id)
    elif kind == "recovered":
        event = ec2_event(instance, "stopped", event_id=event_id)
    elif kind == "review":
        event = ec2_event(instance, "stopped", event_id=event_id, replay_name="bench-replay")
    else:
        raise ValueError(f"make_event cannot make a {kind!r} event")
    return Feed(kind=kind, event_id=event_id, body=json.dumps(event, separators=(",", ":")))


def workload(
    n: int, *, seed: int = 8, pattern: Sequence[Kind] = MIX_PATTERN, lag: int = 17
) -> list[Feed]:
    """`n` feeds following `pattern`; a duplicate repeats a `recovered` feed `lag` or more back.

    Each recovered feed is repeated at most once. With none that far back yet, the earliest one
    not yet repeated is; with none at all, a fresh recovered feed takes the duplicate's place.
    """
    rng = random.Random(seed)
    feeds: list[Feed] = []
    for i in range(n):
        kind = pattern[i % len(pattern)]
        if kind != "duplicate":
            feeds.append(make_event(kind, rng))
            continue
        repeated = {f.event_id for f in feeds if f.kind == "duplicate"}
        earlier = [
            (j, f)
            for j, f in enumerate(feeds)
            if f.kind == "recovered" and f.event_id not in repeated
        ]
        if not earlier:
            feeds.append(make_event("recovered", rng))
            continue
        far_enough = [f for j, f in earlier if i - j >= lag]
        original = far_enough[-1] if far_enough else earlier[0][1]
        feeds.append(Feed(kind="duplicate", event_id=original.event_id, body=original.body))
    return feeds


def homogeneous(kind: Kind, n: int, *, seed: int = 9) -> list[Feed]:
    """`n` fresh feeds of one kind (not `duplicate`)."""
    rng = random.Random(seed)
    return [make_event(kind, rng) for _ in range(n)]


def counts(feeds: Iterable[Feed]) -> dict[str, int]:
    result: dict[str, int] = dict.fromkeys(KINDS, 0)
    for feed in feeds:
        result[feed.kind] += 1
    return result
