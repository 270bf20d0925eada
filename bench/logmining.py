"""Benchmark: grouping accuracy (GA) and speed of our template miner vs drain3 on Loghub-2k.

    python -m bench logmining [--data DIR] [--out bench/results/logmining.json]

DIR holds Loghub-2k systems, one folder each with `NAME_2k.log` and `NAME_2k.log_structured.csv`
(or a `loghub/` folder of them); default $AIOPS_BENCH_DATA/loghub, else ../shared/data/loghub
(bench/data.py: the data is not in the repository). Every system found is measured: the
acceptance set is another folder of the same shape. Without one, it says so and exits 2.

GA as in the Loghub benchmark (Zhu et al., ICSE-SEIP 2019): a line counts when the group it is
put in is exactly the set of lines of its ground-truth template (`EventId`). Two inputs:
- `content`: the message part (the CSV's `Content` column), what the published Drain figures are
  measured on;
- `raw`: whole lines of the `.log` file, header included, what `aiops-agent logs mine FILE` and a
  CloudWatch log group actually see.
One configuration for every system (ours: the default; drain3: its defaults plus the masking of
its example ini). Speed: lines per second of mining alone, best of 3, both in the same run.

Speed is also measured on 20,000 lines of random words (every line a template of its own), the
miner's worst case, so work that grows with the number of clusters shows.

Validation (bench/logmining_folds.py): the default and its ablations are run on every system and
judged leave-systems-out; the out-of-fold GA is the figure that counts. Synthetic held-out styles
(bench/logmining_synth.py) show behaviour on formats no rule was written against. Results go to
bench/results/logmining.json (with the git commit) and bench/results/logmining.md.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiops_agent.logs.mining import ALL_RULES, MinerConfig, TemplateMiner  # noqa: E402
from bench.common import code_version, write_result  # noqa: E402
from bench.data import DATA_ENV, default_dir  # noqa: E402
from bench.logmining_folds import grouping_accuracy, leave_systems_out, markdown  # noqa: E402
from bench.logmining_synth import STYLES, free_text, generate  # noqa: E402

PUBLISHED_DRAIN = {
    "HDFS": 0.998,
    "Hadoop": 0.948,
    "Spark": 0.920,
    "Zookeeper": 0.967,
    "OpenStack": 0.733,
    "BGL": 0.963,
    "HPC": 0.887,
    "Thunderbird": 0.955,
    "Windows": 0.997,
    "Linux": 0.690,
    "Mac": 0.787,
    "Android": 0.911,
    "HealthApp": 0.780,
    "Apache": 1.000,
    "OpenSSH": 0.788,
    "Proxifier": 0.527,
}
"""Drain's GA on Loghub-2k, per-system format, regexes and thresholds: the ICSE-SEIP 2019 table
(logpai/logparser@db272234a0:docs/benchmark.rst, quoted in ../shared/data/loghub/ACCURACY.md).
Published figures, not data: a system of the acceptance set gets its row when it is measured."""

KINDS = ("content", "raw")
DEFAULT_CANDIDATE = "default"

Mine = Callable[[Sequence[str]], list[object]]


@dataclass(frozen=True)
class System:
    name: str
    truth: list[str]
    inputs: dict[str, list[str]]


def candidates() -> dict[str, MinerConfig]:
    """The default and its ablations: what the leave-systems-out protocol chooses among."""
    base = MinerConfig()
    out: dict[str, MinerConfig] = {DEFAULT_CANDIDATE: base}
    for sim in (0.6, 0.7, 0.8, 0.9):
        if sim != base.similarity:
            out[f"similarity={sim}"] = replace(base, similarity=sim)
    for depth in (1, 3):
        if depth != base.prefix_depth:
            out[f"prefix_depth={depth}"] = replace(base, prefix_depth=depth)
    for rule in sorted(ALL_RULES):
        if rule in base.rules:
            out[f"without {rule}"] = replace(base, rules=base.rules - {rule})
        else:
            out[f"with {rule}"] = replace(base, rules=base.rules | {rule})
    return out


def data_dir(given: Path | None) -> Path:
    path = given or default_dir("loghub")
    return path / "loghub" if (path / "loghub").is_dir() else path


def load_systems(folder: Path) -> list[System]:
    systems: list[System] = []
    for structured in sorted(folder.glob("*/*_2k.log_structured.csv")):
        name = structured.name.removesuffix("_2k.log_structured.csv")
        with structured.open(newline="", encoding="utf-8", errors="replace") as fh:
            rows = list(csv.DictReader(fh))
        raw_file = structured.parent / f"{name}_2k.log"
        inputs = {"content": [r["Content"] for r in rows]}
        if raw_file.exists():
            raw = raw_file.read_text(encoding="utf-8", errors="replace").splitlines()
            if len(raw) == len(rows):
                inputs["raw"] = raw
        systems.append(System(name, [r["EventId"] for r in rows], inputs))
    return systems


def git_commit() -> str:
    """The commit, short, `-dirty` when the measured code differed from it."""
    code = code_version()
    return str(code["commit"])[:12] + ("-dirty" if code["dirty"] else "")


def ours(config: MinerConfig | None = None) -> Mine:
    def mine(lines: Sequence[str]) -> list[object]:
        miner = TemplateMiner(config or MinerConfig())
        ids = [miner.add(line).template_id for line in lines]
        return [miner.clusters[tid].template_id for tid in ids]  # as `logs mine` prints them

    return mine


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


def measure(
    mine: Mine, lines: Sequence[str], truth: Sequence[str], runs: int = 3
) -> dict[str, Any]:
    best = float("inf")
    predicted: list[object] = []
    for _ in range(runs):
        started = time.perf_counter()
        predicted = mine(lines)
        best = min(best, time.perf_counter() - started)
    return {
        "ga": round(grouping_accuracy(truth, predicted), 4),
        "groups": len(set(predicted)),
        "lines_per_s": round(len(lines) / best),
    }


def _avg(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def synthetic(miners: dict[str, Mine]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for style in STYLES:
        lines, truth = generate(style)
        out[style] = {
            name: round(grouping_accuracy(truth, mine(lines)), 4) for name, mine in miners.items()
        }
    for name in miners:
        out.setdefault("average", {})[name] = _avg([out[s][name] for s in STYLES])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=None, help=f"default ${DATA_ENV}/loghub or ../shared/data"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "logmining.json")
    args = parser.parse_args(argv)
    folder = data_dir(args.data)
    systems = load_systems(folder) if folder.is_dir() else []
    if len(systems) < 2:
        print(
            f"logmining: no Loghub-2k systems found in {folder} (need >= 2 folders with "
            f"NAME/NAME_2k.log_structured.csv); pass --data DIR or set {DATA_ENV}=DIR. "
            "Nothing measured.",
            file=sys.stderr,
        )
        return 2
    commit = git_commit()
    miners: dict[str, Mine] = {"ours": ours()}
    d3 = drain3_miner()
    if d3 is not None:
        miners["drain3"] = d3
    else:
        print("logmining: drain3 not installed (pip install -e '.[bench]'): no speed ratio")
    results: dict[str, Any] = {}
    for system in systems:
        entry: dict[str, Any] = {
            "lines": len(system.truth),
            "templates": len(set(system.truth)),
            "published_drain": PUBLISHED_DRAIN.get(system.name),
        }
        for kind, lines in system.inputs.items():
            for name, mine in miners.items():
                entry[f"{name}_{kind}"] = measure(mine, lines, system.truth)
        results[system.name] = entry
        print(
            f"{system.name:11s} drain(pub) {entry['published_drain'] or float('nan'):.3f}  "
            + "  ".join(
                f"{name}/{kind} {entry[f'{name}_{kind}']['ga']:.3f} "
                f"({entry[f'{name}_{kind}']['lines_per_s']}/s)"
                for kind in system.inputs
                for name in miners
            ),
            flush=True,
        )
    folds: dict[str, Any] = {}
    configs = candidates()
    for kind in KINDS:
        with_kind = [s for s in systems if kind in s.inputs]
        if len(with_kind) < 2:
            continue
        table = {
            cand: {s.name: grouping_accuracy(s.truth, ours(cfg)(s.inputs[kind])) for s in with_kind}
            for cand, cfg in configs.items()
        }
        folds[kind] = leave_systems_out(table, DEFAULT_CANDIDATE)
        folds[kind]["candidates"] = {
            c: round(sum(v.values()) / len(v), 4) for c, v in table.items()
        }
    published = {s.name: PUBLISHED_DRAIN[s.name] for s in systems if s.name in PUBLISHED_DRAIN}
    summary: dict[str, Any] = {
        "systems": len(systems),
        "published_drain_avg": _avg(list(published.values())),
    }
    for kind in KINDS:
        names = [s.name for s in systems if kind in s.inputs]
        for name in miners:
            key = f"{name}_{kind}"
            if not names:
                continue
            summary[f"{key}_avg_ga"] = _avg([results[s][key]["ga"] for s in names])
            summary[f"{key}_lines_per_s"] = round(
                sum(results[s][key]["lines_per_s"] for s in names) / len(names)
            )
            summary[f"{key}_systems_at_or_above_published"] = sum(
                results[s][key]["ga"] >= published[s] for s in names if s in published
            )
            summary[f"{key}_systems_below_published_by_more_than_0.05"] = sorted(
                s for s in names if s in published and results[s][key]["ga"] < published[s] - 0.05
            )
        if kind in folds:
            summary[f"ours_{kind}_out_of_fold_avg_ga"] = folds[kind]["avg_out_of_fold"]
            summary[f"ours_{kind}_in_sample_avg_ga"] = folds[kind]["avg_in_sample"]
        if "drain3" in miners and f"drain3_{kind}_lines_per_s" in summary:
            summary[f"speed_ratio_{kind}"] = round(
                summary[f"ours_{kind}_lines_per_s"] / summary[f"drain3_{kind}_lines_per_s"], 2
            )
    synth = synthetic(miners)
    summary["synthetic_avg_ga"] = synth["average"]
    worst = free_text()  # every line new: guards against work growing with the clusters
    for name, mine in miners.items():
        summary[f"{name}_free_text_lines_per_s"] = measure(mine, worst, worst, runs=1)[
            "lines_per_s"
        ]
    if "drain3" in miners:
        summary["speed_ratio_free_text"] = round(
            summary["ours_free_text_lines_per_s"] / summary["drain3_free_text_lines_per_s"], 2
        )
    for key, value in summary.items():
        print(f"{key}: {value}")
    table_md = markdown(folds, published, commit)
    table_md += "\n## Synthetic held-out styles (bench/logmining_synth.py)\n\n"
    table_md += "| style | " + " | ".join(miners) + " |\n|---|" + "---|" * len(miners) + "\n"
    for style, row in synth.items():
        table_md += f"| {style} | " + " | ".join(f"{row[m]:.3f}" for m in miners) + " |\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(
        args.out.stem,
        {
            "data": str(folder),
            "summary": summary,
            "systems": results,
            "folds": folds,
            "synthetic": synth,
        },
        directory=args.out.parent,
    )
    args.out.with_suffix(".md").write_text(table_md)
    print(table_md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
