"""The miner's benchmark protocol: GA, leave-systems-out, synthetic styles, data loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.logmining import load_systems, main
from bench.logmining_folds import grouping_accuracy, leave_systems_out, markdown, splits
from bench.logmining_synth import STYLES, generate


def test_grouping_accuracy_counts_only_exact_groups() -> None:
    truth = ["a", "a", "b", "c"]
    assert grouping_accuracy(truth, [1, 1, 2, 3]) == 1.0
    assert grouping_accuracy(truth, [1, 2, 3, 4]) == 0.5  # `a` split: both lines wrong
    assert grouping_accuracy(truth, [1, 1, 2, 2]) == 0.5  # `b` and `c` merged: both wrong


def test_every_half_of_the_systems_is_decided_on_once() -> None:
    eight = [f"s{i}" for i in range(8)]
    assert len(splits(eight)) == 70 and all(len(s) == 4 for s in splits(eight))
    with pytest.raises(ValueError):
        splits(["only"])


def test_a_candidate_fitted_to_some_systems_loses_out_of_fold() -> None:
    table = {
        "default": {"A": 0.8, "B": 0.8, "C": 0.8, "D": 0.8},
        "fitted": {"A": 1.0, "B": 1.0, "C": 0.0, "D": 0.0},
    }
    result = leave_systems_out(table, "default")
    assert result["splits"] == 6 and result["decide_on"] == 2
    assert result["chosen"] == {"default": 5, "fitted": 1}  # chosen when deciding on A and B
    a = result["systems"]["A"]
    c = result["systems"]["C"]
    assert a["default"] == 0.8
    assert a["in_sample"] > a["default"]  # fitted helps A when A is looked at
    assert c["out_of_fold"] < c["default"]  # and hurts C when C is held out
    assert result["avg_out_of_fold"] < result["avg_in_sample"]


def test_ties_go_to_the_default() -> None:
    table = {"other": {"A": 0.5, "B": 0.5}, "default": {"A": 0.5, "B": 0.5}}
    assert leave_systems_out(table, "default")["chosen"] == {"default": 2}


def test_markdown_puts_drain_beside_each_system() -> None:
    table = {"default": {"A": 0.9, "B": 0.7}}
    text = markdown({"content": leave_systems_out(table, "default")}, {"A": 0.95}, "abc123")
    assert "`abc123`" in text
    assert "| A | 0.950 | 0.900 | 0.900 | 0.900 | -0.050 |" in text
    assert "| B |  | 0.700 |" in text  # no published figure: left blank, not invented


def test_synthetic_styles_are_deterministic_and_have_several_templates() -> None:
    for style in STYLES:
        lines, truth = generate(style, n=200)
        assert (lines, truth) == generate(style, n=200)
        assert len(lines) == len(truth) == 200
        assert len(set(truth)) >= 2, style
        assert len(set(lines)) > len(set(truth)), style  # values vary within a template


def _system(folder: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    (folder / name).mkdir(parents=True)
    csv = "LineId,Content,EventId\n" + "".join(
        f'{i},"{content}",{event}\n' for i, (_, content, event) in enumerate(rows, 1)
    )
    (folder / name / f"{name}_2k.log_structured.csv").write_text(csv)
    (folder / name / f"{name}_2k.log").write_text("".join(f"{raw}\n" for raw, _, _ in rows))


def test_systems_are_found_by_shape_and_a_missing_folder_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [("2031-01-01 INFO job 1 done", "job 1 done", "E1"), ("x y", "job 2 done", "E1")]
    _system(tmp_path / "loghub", "Alpha", rows)
    _system(tmp_path / "loghub", "Beta", rows[:1])
    systems = load_systems(tmp_path / "loghub")
    assert [s.name for s in systems] == ["Alpha", "Beta"]
    assert systems[0].inputs["content"] == ["job 1 done", "job 2 done"]
    assert systems[0].inputs["raw"][0] == "2031-01-01 INFO job 1 done"
    assert systems[0].truth == ["E1", "E1"]
    assert main(["--data", str(tmp_path / "nowhere")]) == 2
    assert "no Loghub-2k systems found" in capsys.readouterr().err
