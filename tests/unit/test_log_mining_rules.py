"""The miner's rules for fields that log statements fill in: hosts, paths, sizes and durations
with units, `key=value` values, enumerated words, and (opt-in) variable words among the first
tokens. Fixtures are written here, in no real system's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiops_agent.cli.logs import logs_mine
from aiops_agent.logs.mining import RULES, WILDCARD, MinerConfig, TemplateMiner, tokenize


def _ids(miner: TemplateMiner, lines: list[str]) -> list[str]:
    added = [miner.add(line).template_id for line in lines]
    return [miner.clusters[tid].template_id for tid in added]


def test_a_host_and_port_first_is_one_variable_not_a_key() -> None:
    a = tokenize("relay.example.net:8443 opened through gateway edge.corp.io as TLS")
    b = tokenize("api.example.com:443 opened through gateway db.lan as TLS")
    assert a == b == [WILDCARD, "opened", "through", "gateway", WILDCARD, "as", "TLS"]
    assert tokenize("mail from bob@example.org") == ["mail", "from", WILDCARD]


def test_class_names_and_file_names_are_not_hosts() -> None:
    tokens = tokenize("Registering class org.example.sched.Runner for com.example.ipc in app.log")
    assert tokens == [
        "Registering",
        "class",
        "org.example.sched.Runner",
        "for",
        "com.example.ipc",
        "in",
        "app.log",
    ]


def test_paths_and_urls_are_variables_but_a_slashed_word_pair_is_not() -> None:
    assert tokenize("open /var/spool/queue.db failed: Input/output error") == [
        "open",
        WILDCARD,
        "failed:",
        "Input/output",
        "error",
    ]
    assert tokenize(r"loaded C:\Program\Agent\rules.xml and https://cfg.example.com/x") == [
        "loaded",
        WILDCARD,
        "and",
        WILDCARD,
    ]


def test_a_value_with_a_unit_or_an_optional_human_size_is_one_variable() -> None:
    miner = TemplateMiner()
    lines = [
        "peer closed, 0 bytes out, 12 bytes in, lasted <1 sec",
        "peer closed, 1190 bytes (1.16 KB) out, 3 bytes in, lasted 00:01",
        "peer closed, 52000000 bytes (49.59 MB) out, 7 bytes (7 B) in, lasted 2.5 s",
    ]
    ids = _ids(miner, lines)
    assert len(set(ids)) == 1
    assert miner.clusters[ids[0]].template == "peer closed, <*> out, <*> in, lasted <*>"
    without = TemplateMiner(MinerConfig(rules=RULES - {"units"}))
    assert len(set(_ids(without, lines))) > 1  # the rule is what joins them


def test_all_caps_words_in_one_position_stay_apart() -> None:
    lines = [
        "task t_1 moved from RUNNING to DONE",
        "task t_2 moved from RUNNING to FAILED",
        "task t_3 moved from RUNNING to KILLED",
        "task t_4 moved from RUNNING to DONE",
        'client 10.0.0.1 "GET /a/b/c" answered 200',
        'client 10.0.0.2 "POST /a/b/c" answered 201',
        'client 10.0.0.3 "PUT /a/b/c" answered 201',
    ]
    ids = _ids(TemplateMiner(), lines)
    assert len({ids[0], ids[1], ids[2]}) == 3 and ids[3] == ids[0]
    assert len(set(ids[4:])) == 3
    # three different words would otherwise be taken for a variable (rule `siblings`)
    merged = _ids(TemplateMiner(MinerConfig(rules=RULES - {"enums"})), lines)
    assert len(set(merged[:4])) == 1 and len(set(merged[4:])) == 1


def test_a_level_in_the_header_is_not_an_enumerated_word() -> None:
    miner = TemplateMiner()
    a = miner.add("2031-01-02 10:00:00.001 INFO [exec-1] com.example.Job: spilled 3 MB to /tmp/a/b")
    b = miner.add("2031-01-02 10:00:01.001 WARN [exec-2] com.example.Job: spilled 1 GB to /tmp/c/d")
    assert a.template_id == b.template_id
    assert b.template == "<WARN> com.example.Job: spilled <*> to <*>"


def test_key_value_values_vary_and_keys_route() -> None:
    miner = TemplateMiner()
    lines = [
        'time=2031-01-02T10:00:00Z level=error msg="cache miss" key=atlas:erin took=84ms',
        'time=2031-01-02T10:00:01Z level=info msg="cache miss" key=vega:bob took=2ms',
        'time=2031-01-02T10:00:02Z level=warn msg="job finished" job=nightly user=carol',
    ]
    ids = _ids(miner, lines)
    assert ids[0] == ids[1] != ids[2]
    assert tokenize("user=root tty=ssh logname=") == ["user=<*>", "tty=<*>", "logname="]


def test_three_words_in_one_position_make_a_variable_two_stay_apart() -> None:
    miner = TemplateMiner()
    users = _ids(miner, [f"{u} logged out of the console" for u in ("alice", "bob", "carol")])
    later = _ids(miner, ["alice logged out of the console", "dave logged out of the console"])
    assert len(set(users + later)) == 1  # the first two resolve to the survivor
    assert miner.clusters[users[0]].template == "<*> logged out of the console"
    assert miner.clusters[users[1]] is miner.clusters[users[0]]
    two = _ids(TemplateMiner(), ["Accepted key for <*> from h", "Failed key for <*> from h"] * 2)
    assert two[0] != two[1] and two[:2] == two[2:]
    without = TemplateMiner(MinerConfig(rules=RULES - {"siblings"}))
    assert len(set(_ids(without, [f"{u} logged out of the console" for u in "abc"]))) == 3


def test_one_word_messages_are_not_siblings() -> None:
    ids = _ids(TemplateMiner(), ["initEnvironment", "getCounterStatus", "sendFailedBroadcast"])
    assert len(set(ids)) == 3


def test_a_cluster_that_gains_a_variable_takes_in_the_ones_it_covers() -> None:
    miner = TemplateMiner()
    lines = [
        "Invalid user webmaster from 10.0.0.1",
        "Invalid user test9 from 10.0.0.2",  # the digit shows the position varies
        "Invalid user webmaster from 10.0.0.3",
    ]
    ids = _ids(miner, lines)
    assert len(set(ids)) == 1
    assert miner.clusters[ids[0]].template == "Invalid user <*> from <*>"
    apart = _ids(TemplateMiner(MinerConfig(rules=RULES - {"subsume"})), lines)
    assert apart[0] != apart[1]
    # a template of one constant covers too much to take others in
    short = _ids(TemplateMiner(), ["cache warmed", "cache 7", "cache cold"])
    assert short[0] != short[1]


def test_logs_mine_gives_lines_mined_before_a_merge_the_final_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.log"
    users = ("alice", "bob", "carol", "alice")
    path.write_text("".join(f"{u} logged out of the console\n" for u in users))
    assert logs_mine(path, jsonl=True) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert len({r["template_id"] for r in rows}) == 1
    assert {r["template"] for r in rows} == {"<*> logged out of the console"}


def test_capitalized_event_names_are_not_taken_for_a_variable() -> None:
    events = ("Started", "Paused", "Resumed", "Stopped")
    lines = [f"[vm: {i:08x}] VM {e} (state change)" for i, e in enumerate(events * 2)]
    ids = _ids(TemplateMiner(), lines)
    assert len(set(ids)) == 4 and ids[:4] == ids[4:]
    merged = _ids(TemplateMiner(MinerConfig(rules=RULES - {"capitalized"})), lines)
    assert len(set(merged)) == 1
    # the first word is capitalized by sentence case: it may still be a variable
    names = _ids(TemplateMiner(), [f"{u} signed the release notes" for u in ("Ann", "Bob", "Cyd")])
    assert len(set(names)) == 1


def test_two_word_variables_merge_once_each_has_shown_three_values() -> None:
    pairs = [("ann", "bo"), ("cy", "di"), ("ed", "flo"), ("gus", "hal"), ("ann", "di")]
    lines = [f"{a} handed the ticket to {b} before lunch" for a, b in pairs]
    ids = _ids(TemplateMiner(), lines)
    assert len(set(ids)) == 1
    template = TemplateMiner()
    for line in lines:
        cluster = template.add(line)
    assert cluster.template == "<*> handed the ticket to <*> before lunch"
    single = TemplateMiner(MinerConfig(rules=RULES - {"sibling_pairs"}))
    assert len(set(_ids(single, lines))) > 1


def test_a_merged_id_seeded_after_a_restart_is_an_alias_not_a_second_cluster() -> None:
    miner = TemplateMiner()
    ids = _ids(miner, [f"{u} logged out of the console" for u in ("alice", "bob", "carol")])
    stored = {tid: miner.clusters[tid].template for tid in {*ids, *miner.clusters}}
    assert len(stored) == 2  # alice's id (the survivor) and bob's, both spelled the same
    again = TemplateMiner()
    for tid, template in stored.items():
        again.seed(tid, template)
    assert len({id(c) for c in again.clusters.values()}) == 1
    assert again.add("dave logged out of the console").template_id in stored  # the first seeded
