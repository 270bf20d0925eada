"""Benchmark: grouping accuracy (GA) and speed of our template miner vs drain3 on Loghub-2k.

    python bench/logmining.py [--data ../shared/data/loghub] [--out bench/results/logmining.json]

The data is not in the repository (research licence): `--data`, else $AIOPS_BENCH_DATA/loghub,
else ../shared/data/loghub (bench/data.py); without it the benchmark says so and exits 2.

GA as in the Loghub benchmark (Zhu et al., ICSE-SEIP 2019): a line counts when the group it is
put in is exactly the set of lines of its ground-truth template (`EventId` of the 2k structured
CSV). Two inputs per system:
- `content`: the message part (the CSV's `Content` column), what the published Drain figures and
  the issue's drain3 reference (0.894 average) are measured on;
- `raw`: whole lines of the `.log` file, header included, what `aiops-agent logs mine FILE` and a
  CloudWatch log group actually see.
One configuration for every system (ours: the default; drain3 0.9.11: its defaults plus the
masking of its example ini). Speed is lines per second of mining alone, best of 3, same run.
drain3 is optional: without it installed, its columns are left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiops_agent.logs.mining import TemplateMiner  # noqa: E402
from bench.data import absent, default_dir  # noqa: E402

SYSTEMS = ("Apache", "BGL", "HDFS", "Hadoop", "HealthApp", "Linux", "OpenSSH", "Spark")
PUBLISHED_DRAIN = {
    "Apache": 1.000,
    "BGL": 0.963,
    "HDFS": 0.998,
    "Hadoop": 0.948,
    "HealthApp": 0.780,
    "Linux": 0.690,
    "OpenSSH": 0.788,
    "Spark": 0.920,
}
"""ICSE-SEIP 2019 table (ACCURACY.md): per-system format, regexes and thresholds."""

Mine = Callable[[Sequence[str]], list[object]]


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[object]) -> float:
    truth_groups: dict[str, set[int]] = defaultdict(set)
    pred_groups: dict[object, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        truth_groups[t].add(i)
        pred_groups[p].add(i)
    correct = 0
    for lines in pred_groups.values():
        if truth_groups[truth[next(iter(lines))]] == lines:
            correct += len(lines)
    return correct / len(truth)


def ours(lines: Sequence[str]) -> list[object]:
    miner = TemplateMiner()
    return [miner.add(line).template_id for line in lines]


def drain3_miner() -> Mine | None:
    try:
        from drain3 import TemplateMiner as Drain3  # type: ignore[import-not-found]
        from drain3.masking import MaskingInstruction  # type: ignore[import-not-found]
        from drain3.template_miner_config import (  # type: ignore[import-not-found]
            TemplateMinerConfig,
        )
    except ImportError:
        return None
    logging.getLogger("drain3").setLevel(logging.ERROR)
    edge, end = r"((?<=[^A-Za-z0-9])|^)", r"((?=[^A-Za-z0-9])|$)"
    masks = [  # drain3's examples/drain3.ini
        (edge + r"(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))" + end, "ID"),
        (edge + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + end, "IP"),
        (edge + r"([0-9a-f]{6,} ?){3,}" + end, "SEQ"),
        (edge + r"([0-9A-F]{4} ?){4,}" + end, "SEQ"),
        (edge + r"(0x[a-f0-9A-F]+)" + end, "HEX"),
        (edge + r"([\-\+]?\d+)" + end, "NUM"),
        (r"(?<=executed cmd )(\".+?\")", "CMD"),
    ]

    def mine(lines: Sequence[str]) -> list[object]:
        config = TemplateMinerConfig()
        config.masking_instructions = [MaskingInstruction(p, m) for p, m in masks]
        config.profiling_enabled = False
        miner = Drain3(config=config)
        return [miner.add_log_message(line)["cluster_id"] for line in lines]

    return mine


def measure(mine: Mine, lines: Sequence[str], truth: Sequence[str]) -> dict[str, Any]:
    best = float("inf")
    predicted: list[object] = []
    for _ in range(3):
        started = time.perf_counter()
        predicted = mine(lines)
        best = min(best, time.perf_counter() - started)
    return {
        "ga": round(grouping_accuracy(truth, predicted), 4),
        "groups": len(set(predicted)),
        "lines_per_s": round(len(lines) / best),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_dir("loghub"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "logmining.json")
    args = parser.parse_args(argv)
    first = args.data / SYSTEMS[0] / f"{SYSTEMS[0]}_2k.log_structured.csv"
    if absent("logmining", "Loghub-2k", args.data, first):
        return 2
    miners: dict[str, Mine] = {"ours": ours}
    d3 = drain3_miner()
    if d3 is not None:
        miners["drain3"] = d3
    systems: dict[str, Any] = {}
    for system in SYSTEMS:
        folder = args.data / system
        with (folder / f"{system}_2k.log_structured.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        truth = [r["EventId"] for r in rows]
        inputs = {
            "content": [r["Content"] for r in rows],
            "raw": (folder / f"{system}_2k.log").read_text().splitlines(),
        }
        entry: dict[str, Any] = {
            "lines": len(rows),
            "templates": len(set(truth)),
            "published_drain": PUBLISHED_DRAIN[system],
        }
        for kind, lines in inputs.items():
            assert len(lines) == len(truth), (system, kind)
            for name, mine in miners.items():
                entry[f"{name}_{kind}"] = measure(mine, lines, truth)
        systems[system] = entry
        print(
            f"{system:10s} drain(pub) {entry['published_drain']:.3f}  "
            + "  ".join(
                f"{name}/{kind} {entry[f'{name}_{kind}']['ga']:.3f} "
                f"({entry[f'{name}_{kind}']['lines_per_s']}/s)"
                for kind in inputs
                for name in miners
            )
        )
    summary: dict[str, Any] = {
        "published_drain_avg": round(sum(PUBLISHED_DRAIN.values()) / len(SYSTEMS), 4)
    }
    for kind in ("content", "raw"):
        for name in miners:
            key = f"{name}_{kind}"
            summary[f"{key}_avg_ga"] = round(
                sum(systems[s][key]["ga"] for s in SYSTEMS) / len(SYSTEMS), 4
            )
            summary[f"{key}_lines_per_s"] = round(
                sum(systems[s][key]["lines_per_s"] for s in SYSTEMS) / len(SYSTEMS)
            )
            summary[f"{key}_systems_at_or_above_published"] = sum(
                systems[s][key]["ga"] >= PUBLISHED_DRAIN[s] for s in SYSTEMS
            )
    for key, value in summary.items():
        print(f"{key}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "systems": systems}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
