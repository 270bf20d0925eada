"""The cost model's arithmetic and the floor's write counts (no benchmark is run here)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.calls import item_size, phase_figures
from bench.cost import (
    PRICES,
    VOLUME,
    UnpricedOperation,
    daily_operations,
    dynamodb_units,
    model,
    monthly_lines,
    outcome_mix,
    with_measured_scan,
    write_units,
)
from bench.floor import expected_work, floor_writes, kind_of

CALLS: dict[str, Any] = {
    "outcomes": {
        "normal": {
            "by_operation": {"sqs:ReceiveMessage": 0.1, "sqs:DeleteMessageBatch": 0.1},
            "log_bytes_per_event": 300,
            "incident_puts_per_event": 0.0,
        },
        "duplicate": {"by_operation": {"dynamodb:GetItem": 1.0}, "incident_puts_per_event": 0.0},
        "recovered": {
            "events": 10,
            "by_operation": {
                "dynamodb:TransactWriteItems": 5.0,
                "dynamodb:UpdateItem": 2.0,
                "sns:Publish": 1.0,
            },
            "incident_puts_per_event": 5.0,
        },
        "review": {
            "events": 10,
            "by_operation": {"dynamodb:TransactWriteItems": 2.0},
            "incident_puts_per_event": 2.0,
        },
    },
    "incident_item_sizes": {"COMPLETED": {"mean_bytes": 2600}},
    # 70 transactions in all (10 x 5 + 10 x 2) carried 140 audit entries of 300 bytes.
    "audit_item_sizes": {"count": 140, "mean_bytes": 300},
}


def test_outcome_mix_leaves_the_rest_normal() -> None:
    mix = outcome_mix(VOLUME)
    assert sum(mix.values()) == VOLUME["events_per_day"]
    assert mix["normal"] == 10_000 - 50 - 5 - 100


def test_daily_operations_weight_per_event_calls_by_the_mix() -> None:
    ops = daily_operations(CALLS["outcomes"], {"normal": 1000, "recovered": 10})
    assert ops["sqs:ReceiveMessage"] == pytest.approx(100)
    assert ops["dynamodb:TransactWriteItems"] == pytest.approx(50)
    assert "dynamodb:GetItem" not in ops


def test_transactions_are_priced_with_their_audit_entries_at_double_units() -> None:
    units = dynamodb_units(CALLS, {"recovered": 1, "review": 0}, gsi_factor=4)
    # Per transaction: 2 x (incident 3 KB x 4 copies + 2 audit entries x 1 KB) = 28 units;
    # 5 transactions and 2 single-unit updates per recovered event; the closing transaction
    # also deletes the step lease (1 unit, doubled).
    assert units["write"] == pytest.approx(5 * 28 + 2 + 2)
    assert units["read"] == 0


def test_every_dynamodb_operation_must_have_a_price() -> None:
    calls = {**CALLS, "outcomes": {"normal": {"by_operation": {"dynamodb:ExecuteStatement": 1}}}}
    with pytest.raises(UnpricedOperation):
        dynamodb_units(calls, {"normal": 1}, gsi_factor=1)


def test_write_units_round_up_per_kb_and_count_index_copies() -> None:
    assert write_units(1024, 1) == 1
    assert write_units(1025, 1) == 2
    assert write_units(2600, 4) == 12


def test_monthly_lines_price_sns_and_scale_with_volume() -> None:
    one = {x["item"]: x for x in monthly_lines(CALLS, VOLUME, PRICES, 1)}
    hundred = {x["item"]: x for x in monthly_lines(CALLS, VOLUME, PRICES, 100)}
    publishes = VOLUME["recoveries_per_day"] * 30.4
    assert one["SNS publishes"]["quantity_per_month"] == pytest.approx(publishes)
    assert one["SNS publishes"]["dollars"] == pytest.approx(publishes * 0.5 / 1e6, abs=1e-4)
    assert hundred["SNS publishes"]["quantity_per_month"] == pytest.approx(100 * publishes)
    # Replicas are not scaled: the compute bill stays.
    assert hundred["Fargate vCPU"]["dollars"] == one["Fargate vCPU"]["dollars"]
    assert one["Logs Insights scanned"]["quantity_per_month"] == pytest.approx(10 * 1.02 * 30.4)


def test_model_states_prices_and_assumptions() -> None:
    result = model(CALLS)
    assert result["prices"]["sqs_per_million_requests"] == 0.40
    assert set(result["scenarios"]) == {"1x", "100x"}
    one, hundred = result["scenarios"]["1x"], result["scenarios"]["100x"]
    assert hundred["total_dollars_per_month"] > one["total_dollars_per_month"] > 0
    assert one["seed_logs_insights_dollars"] == pytest.approx(10 * 12 * 30.4 * 0.005, rel=1e-3)
    assert one["with_bedrock_analyzer"]["input_tokens_per_call"] > 0


def test_phase_figures_amortize_receives_and_count_writes() -> None:
    figures = phase_figures(
        {"sqs:ReceiveMessage": 10, "sqs:DeleteMessageBatch": 10, "dynamodb:UpdateItem": 4}, 100
    )
    assert figures["calls_per_event"] == pytest.approx(0.24)
    assert figures["dynamodb_writes_per_event"] == pytest.approx(0.04)
    assert figures["messages_per_receive"] == 10
    with pytest.raises(ValueError):
        phase_figures({}, 0)


def test_item_size_counts_names_and_values() -> None:
    assert item_size({"id": {"S": "abc"}, "v": {"N": "12"}}) == 2 + 3 + 1 + 2


def test_floor_writes_follow_the_daemons_puts() -> None:
    assert floor_writes(CALLS) == {"normal": 0, "duplicate": 1, "recovered": 5, "review": 2}
    with pytest.raises(ValueError):
        floor_writes(None)


def test_floor_expects_one_lost_claim_per_duplicate() -> None:
    writes = floor_writes(CALLS)
    kinds = ["normal", "recovered", "duplicate", "review", "duplicate"]
    assert expected_work(kinds, writes) == {"puts": 0 + 5 + 1 + 2 + 1, "claims_lost": 2}


def test_floor_tells_outcomes_from_bodies() -> None:
    from bench.common import homogeneous

    assert [kind_of(homogeneous(k, 1)[0].body) for k in ("normal", "recovered", "review")] == [
        "normal",
        "recovered",
        "review",
    ]


def test_the_log_scan_factors_come_from_the_analyzers_run_when_there_is_one() -> None:
    logscan = {"ours": {"scan_factor": 1.083}, "seed": {"scan_factor": 12.0}}
    v, source = with_measured_scan(VOLUME, logscan)
    assert v["log_scan_overlap"] == pytest.approx(0.083)
    assert v["seed_log_rescan_factor"] == 12.0
    assert source.startswith("measured")
    assert with_measured_scan(VOLUME, None)[1].startswith("assumed")
    one = model(CALLS, logscan=logscan)["scenarios"]["1x"]
    scanned = {x["item"]: x for x in one["lines"]}["Logs Insights scanned"]
    assert scanned["quantity_per_month"] == pytest.approx(10 * 1.083 * 30.4)
