"""Leave-systems-out validation for the template miner: the figure that counts is out of fold.

Pure functions (no data, no miner): given the grouping accuracy of every candidate configuration
on every system, decide on some systems and report on the others, over every split.

- A *candidate* is a named miner configuration: the default and its ablations (one rule off, a
  threshold moved). Each is run once per system; choosing is cheap, so every split of the systems
  into `decide` (half, rounded down) and `held out` is tried: 70 splits for 8 systems.
- For a split, the candidate with the best average GA on the `decide` systems is *chosen* (ties
  go to the default, then to the order given). Its GA on each held-out system is that system's
  out-of-fold figure for the split; its GA on the decide systems is the in-sample figure.
- A system's out-of-fold GA is the mean over the splits that held it out; in-sample likewise over
  the splits that decided on it. When the default is chosen on every split, both equal the
  default's GA on the system, and the evidence is that no rule switch would have helped anywhere
  it was not looked at; when another candidate wins in-sample but not out of fold, that rule is
  fitted to the files, not to how logs are written.

What this cannot catch: choices a person made while looking at all the visible systems (which
rules exist at all). For those the synthetic held-out styles (bench/logmining_synth.py) and the
acceptance set the bench never sees are the check.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

GaTable = Mapping[str, Mapping[str, float]]
"""candidate name -> system name -> grouping accuracy."""


def grouping_accuracy(truth: Sequence[object], predicted: Sequence[object]) -> float:
    """Loghub's GA (Zhu et al., ICSE-SEIP 2019): a line counts when the group it is put in is
    exactly the set of lines of its ground-truth template."""
    if not truth:
        return 0.0
    truth_groups: dict[object, set[int]] = defaultdict(set)
    pred_groups: dict[object, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        truth_groups[t].add(i)
        pred_groups[p].add(i)
    correct = 0
    for lines in pred_groups.values():
        if truth_groups[truth[next(iter(lines))]] == lines:
            correct += len(lines)
    return correct / len(truth)


def splits(systems: Sequence[str], decide: int | None = None) -> list[tuple[str, ...]]:
    """Every choice of `decide` systems (half, rounded down, by default) to decide on."""
    names = sorted(systems)
    k = len(names) // 2 if decide is None else decide
    if not 0 < k < len(names):
        raise ValueError(f"need at least 2 systems to hold some out, got {len(names)}")
    return list(itertools.combinations(names, k))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def choose(table: GaTable, decide: Sequence[str], default: str) -> str:
    """The candidate with the best mean GA on `decide`; ties go to `default`, then to order."""
    order = [default, *[c for c in table if c != default]]
    return max(order, key=lambda c: (_mean([table[c][s] for s in decide]), -order.index(c)))


def leave_systems_out(table: GaTable, default: str, decide: int | None = None) -> dict[str, Any]:
    """Per system: the default's GA, in-sample and out-of-fold GA of the chosen candidate."""
    if default not in table:
        raise ValueError(f"default candidate {default!r} not in the table")
    systems = sorted(next(iter(table.values())))
    inside: dict[str, list[float]] = defaultdict(list)
    outside: dict[str, list[float]] = defaultdict(list)
    chosen_count: dict[str, int] = defaultdict(int)
    every = splits(systems, decide)
    for decided in every:
        chosen = choose(table, decided, default)
        chosen_count[chosen] += 1
        for system in systems:
            (inside if system in decided else outside)[system].append(table[chosen][system])
    per_system = {
        s: {
            "default": round(table[default][s], 4),
            "in_sample": round(_mean(inside[s]), 4),
            "out_of_fold": round(_mean(outside[s]), 4),
        }
        for s in systems
    }
    return {
        "splits": len(every),
        "decide_on": len(every[0]),
        "chosen": dict(sorted(chosen_count.items(), key=lambda kv: -kv[1])),
        "systems": per_system,
        "avg_default": round(_mean([v["default"] for v in per_system.values()]), 4),
        "avg_in_sample": round(_mean([v["in_sample"] for v in per_system.values()]), 4),
        "avg_out_of_fold": round(_mean([v["out_of_fold"] for v in per_system.values()]), 4),
    }


def markdown(
    folds: Mapping[str, Mapping[str, Any]],
    published: Mapping[str, float],
    commit: str,
) -> str:
    """One table per input kind: per system, default / in-sample / out-of-fold beside Drain."""
    lines = [
        "# Log template mining: leave-systems-out",
        "",
        f"Commit `{commit}`. Generated by `python -m bench logmining`; do not edit by hand.",
        "GA = grouping accuracy. Drain = published per-system-tuned figure (ICSE-SEIP'19 table).",
        "In-sample / out-of-fold: GA of the candidate chosen on the other systems of each split",
        "(see bench/logmining_folds.py); out-of-fold is the figure that counts.",
        "",
    ]
    for kind, result in folds.items():
        lines += [
            f"## {kind} ({result['splits']} splits, deciding on {result['decide_on']})",
            "",
            f"Chosen per split: {', '.join(f'{k} x{v}' for k, v in result['chosen'].items())}",
            "",
            "| system | Drain (published) | default | in-sample | out-of-fold | OOF - Drain |",
            "|---|---|---|---|---|---|",
        ]
        for system, v in result["systems"].items():
            drain = published.get(system)
            gap = "" if drain is None else f"{v['out_of_fold'] - drain:+.3f}"
            lines.append(
                f"| {system} | {'' if drain is None else f'{drain:.3f}'} | {v['default']:.3f} "
                f"| {v['in_sample']:.3f} | {v['out_of_fold']:.3f} | {gap} |"
            )
        known = [published[s] for s in result["systems"] if s in published]
        drain_avg = f"{_mean(known):.3f}" if known else ""
        lines += [
            f"| **average** | {drain_avg} | {result['avg_default']:.3f} "
            f"| {result['avg_in_sample']:.3f} | {result['avg_out_of_fold']:.3f} | |",
            "",
        ]
    return "\n".join(lines)
