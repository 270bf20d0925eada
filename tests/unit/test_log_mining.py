"""Template mining: masking, grouping, stable ids, seeding, and `logs mine`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiops_agent.logs.mining import WILDCARD, TemplateMiner, tokenize
from aiops_agent.logs_cli import logs_mine


def test_tokenize_masks_numbers_addresses_dates_and_keeps_keys() -> None:
    tokens = tokenize("Jun 14 15:16:01 conn from 10.1.2.3:8080 uid=0 took 35ms (x) ()")
    assert tokens == [
        WILDCARD,
        "conn",
        "from",
        WILDCARD,
        "uid=<*>",
        "took",
        WILDCARD,
        "(x)",
        WILDCARD,
    ]


def test_variable_runs_collapse_so_lists_of_any_length_match() -> None:
    miner = TemplateMiner()
    a = miner.add("BLOCK* ask 10.0.0.1:50010 to delete blk_1 blk_2")
    b = miner.add("BLOCK* ask 10.0.0.2:50010 to delete blk_3 blk_4 blk_5 blk_6")
    assert a.template_id == b.template_id


def test_same_shape_groups_and_a_new_shape_is_a_new_template() -> None:
    miner = TemplateMiner()
    first = miner.add("Received disconnect from 1.2.3.4: 11: Bye Bye [preauth]")
    second = miner.add("Received disconnect from 5.6.7.8: 11: Bye Bye [preauth]")
    other = miner.add("Failed password for root from 1.2.3.4 port 22 ssh2")
    assert first.template_id == second.template_id
    assert other.template_id != first.template_id
    assert first.size == 2 and other.size == 1
    assert miner.match("Received disconnect from 9.9.9.9: 11: Bye Bye [preauth]") is first
    assert miner.match("totally different words here now") is None


def test_differing_constants_generalize_to_a_wildcard() -> None:
    miner = TemplateMiner()
    miner.add("session opened for user alice by the web console")
    cluster = miner.add("session opened for user bob by the web console")
    assert cluster.template == "session opened for user <*> by the web console"


def test_seeded_clusters_keep_their_ids_across_restarts() -> None:
    before = TemplateMiner()
    cluster = before.add("ERROR payment-db connection refused after 3000 ms")
    after = TemplateMiner()
    after.seed(cluster.template_id, cluster.template)
    again = after.add("ERROR payment-db connection refused after 12 ms")
    assert again.template_id == cluster.template_id
    assert len(after.clusters) == 1


def test_ids_are_stable_between_runs() -> None:
    a = TemplateMiner().add("disk /dev/sda1 is 91% full")
    b = TemplateMiner().add("disk /dev/sda1 is 91% full")
    assert a.template_id == b.template_id and len(a.template_id) == 12


def test_logs_mine_jsonl_has_one_object_per_line_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.log"
    path.write_text("job 1 done in 5 ms\njob 2 done in 7 ms\nERROR disk full on node-3\n")
    assert logs_mine(path, jsonl=True) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"line", "template_id", "template"}
    assert rows[0]["template_id"] == rows[1]["template_id"] != rows[2]["template_id"]
    assert rows[0]["template"] == "job <*> done in <*> ms"


def test_logs_mine_table_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.log"
    path.write_text("a 1\na 2\nb c\n")
    assert logs_mine(path, jsonl=False) == 0
    out = capsys.readouterr().out
    assert "3 lines, 2 templates" in out
    assert logs_mine(tmp_path / "nope.log", jsonl=False) == 2
    assert "cannot read" in capsys.readouterr().err
