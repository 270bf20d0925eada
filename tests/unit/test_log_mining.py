"""Template mining: masking, grouping, stable ids, seeding, and `logs mine`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiops_agent.cli.logs import logs_mine
from aiops_agent.logs.mining import WILDCARD, MinerConfig, TemplateMiner, tokenize


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
    for user in ("alice", "bob", "carol"):
        cluster = miner.add(f"session opened for user {user} by the web console")
    assert cluster.template == "session opened for user <*> by the web console"
    resembling = TemplateMiner(MinerConfig(similarity=0.7))  # Drain's way: on resemblance
    resembling.add("session opened for user alice by the web console")
    cluster = resembling.add("session opened for user bob by the web console")
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
    assert rows[0]["template"] == "job <*> done in <*>"  # the unit is part of the value


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


def test_a_header_with_a_level_and_a_thread_name_does_not_split_a_message() -> None:
    miner = TemplateMiner()
    a = miner.add(
        "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.App: Created app for job_17_0020"
    )
    b = miner.add(
        "2015-10-18 18:05:12,001 INFO [IPC Server handler 5 on 62270] org.apache.hadoop.App: "
        "Created app for job_17_0021"
    )
    assert a.template_id == b.template_id
    assert a.template == "<INFO> org.apache.hadoop.App: Created app for <*>"


BGL_HEAD = (
    "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1 RAS KERNEL"
)


def test_one_message_at_two_levels_is_one_template_showing_the_worse() -> None:
    miner = TemplateMiner()
    a = miner.add(f"{BGL_HEAD} INFO instruction address: 0x00004ed8")
    b = miner.add(f"{BGL_HEAD} FATAL instruction address: 0x00004ed9")
    c = miner.add(f"{BGL_HEAD} INFO instruction address: 0x00004eda")
    assert a.template_id == b.template_id == c.template_id
    assert c.template == "<FATAL> instruction address: <*>"


def test_header_tags_do_not_make_short_messages_alike() -> None:
    miner = TemplateMiner()
    a = miner.add(f"{BGL_HEAD} INFO generating core.2275")
    b = miner.add(f"{BGL_HEAD} INFO ciod: LOGIN chdir(/p/gb1) failed")
    assert a.template_id != b.template_id


def test_a_syslog_header_is_dropped_so_hosts_and_tags_do_not_merge_messages() -> None:
    miner = TemplateMiner()
    down = miner.add("Jun 19 04:08:57 combo cups: cupsd shutdown succeeded")
    up = miner.add("Jun 19 04:09:02 combo cups: cupsd startup succeeded")
    again = miner.add("Jul  3 04:07:49 other-host cups: cupsd shutdown succeeded")
    assert down.template_id != up.template_id
    assert again.template_id == down.template_id
    assert down.template == "cupsd shutdown succeeded"
    iso = tokenize("2024-05-01T10:00:00Z web-1 sshd[811]: Accepted publickey for deploy")
    assert iso == ["Accepted", "publickey", "for", "deploy"]


def test_a_bare_message_keeps_its_words_even_when_one_is_a_level() -> None:
    assert tokenize("ERROR upstream timeout id=7") == ["ERROR", "upstream", "timeout", "id=<*>"]
    assert tokenize("Failed to connect: ERROR 42") == [
        "Failed",
        "to",
        "connect:",
        "ERROR",
        WILDCARD,
    ]
    # a level word after a lower-case word is content, not the end of a header
    assert tokenize("2024-05-01 worker said INFO twice")[:3] == [WILDCARD, "worker", "said"]
