"""The HTTP endpoints over a real socket on loopback, and the Health rules behind them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiops_agent.obs.health import Health
from aiops_agent.obs.http import HttpServer, start_http_server
from aiops_agent.obs.metrics import Metrics

TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Health, Metrics, HttpServer]]:
    metrics = Metrics()
    health = Health(metrics)
    server = await start_http_server(health, metrics, "127.0.0.1", 0)
    try:
        yield health, metrics, server
    finally:
        await server.close()


async def _get(server: HttpServer, path: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def _get_json(server: HttpServer, path: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, await response.json()


async def test_binds_an_ephemeral_port(served: tuple[Health, Metrics, HttpServer]) -> None:
    _, _, server = served
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


async def test_readiness_follows_lifecycle(served: tuple[Health, Metrics, HttpServer]) -> None:
    health, _, server = served
    assert await _get_json(server, "/readyz") == (503, {"status": "starting"})
    health.mark_started()
    assert await _get_json(server, "/readyz") == (200, {"status": "ready"})
    health.mark_draining()
    assert await _get_json(server, "/readyz") == (503, {"status": "draining"})


async def test_liveness_ok_then_stale() -> None:
    """Ages on a clock the test moves, so a slow machine cannot age a loop between two GETs."""
    now = [1000.0]
    metrics = Metrics()
    health = Health(metrics, monotonic=lambda: now[0])
    server = await start_http_server(health, metrics, "127.0.0.1", 0)
    try:
        health.register_loop("sqs", 60.0)
        health.register_loop("sweeper", 5.0)
        health.beat("sweeper")
        now[0] += 5.0  # exactly the max age: still fresh
        status, body = await _get_json(server, "/healthz")
        assert status == 200
        assert body["status"] == "ok"
        loops = body["loops"]
        assert isinstance(loops, dict)
        assert set(loops) == {"sqs", "sweeper"}
        now[0] += 0.5
        status, body = await _get_json(server, "/healthz")
        assert status == 503
        loops = body["loops"]
        assert isinstance(loops, dict)
        assert loops["sweeper"]["ok"] is False and loops["sweeper"]["age_s"] == 5.5
        assert loops["sqs"]["ok"] is True
        health.beat("sweeper")
        status, _ = await _get_json(server, "/healthz")
        assert status == 200
    finally:
        await server.close()


async def test_metrics_endpoint(served: tuple[Health, Metrics, HttpServer]) -> None:
    health, metrics, server = served
    metrics.on_aws_call("sqs", "ReceiveMessage", "ok")
    health.beat("sqs")
    status, content_type, text = await _get(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert "version=" in content_type
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "aiops_aws_api_calls" in names
    assert all(name.startswith("aiops_") for name in names)
    assert 'aiops_loop_last_beat_timestamp_seconds{loop="sqs"}' in text


async def test_unknown_path_is_404(served: tuple[Health, Metrics, HttpServer]) -> None:
    _, _, server = served
    status, _, _ = await _get(server, "/nope")
    assert status == 404


async def test_close_releases_the_port() -> None:
    metrics = Metrics()
    server = await start_http_server(Health(metrics), metrics, "127.0.0.1", 0)
    port = server.port
    await server.close()
    await server.close()  # idempotent
    with pytest.raises(aiohttp.ClientConnectionError):
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.get(f"http://127.0.0.1:{port}/healthz"),
        ):
            pass


# -- Health, without a socket ------------------------------------------------------------------


def test_health_no_loops_is_alive() -> None:
    assert Health().alive() == (True, {})


def test_never_beaten_loop_has_a_grace_period() -> None:
    health = Health()
    health.register_loop("logs", 30.0)
    start = time.monotonic()
    assert health.alive(now=start + 29.0)[0] is True
    ok, detail = health.alive(now=start + 31.0)
    assert ok is False
    assert detail["logs"]["beats"] == 0


def test_beat_resets_age() -> None:
    health = Health()
    health.register_loop("sqs", 10.0)
    t0 = time.monotonic()
    assert health.alive(now=t0 + 11.0)[0] is False
    health.beat("sqs")
    t1 = time.monotonic()
    ok, detail = health.alive(now=t1 + 5.0)
    assert ok is True
    assert detail["sqs"]["beats"] == 1


def test_one_stale_loop_fails_liveness() -> None:
    health = Health()
    health.register_loop("fast", 1.0)
    health.register_loop("slow", 100.0)
    ok, detail = health.alive(now=time.monotonic() + 2.0)
    assert ok is False
    assert detail["fast"]["ok"] is False
    assert detail["slow"]["ok"] is True


def test_unregistered_loop_is_forgotten() -> None:
    health = Health()
    health.register_loop("x", 1.0)
    health.unregister_loop("x")
    assert health.alive(now=time.monotonic() + 10.0) == (True, {})


def test_register_rejects_non_positive_age() -> None:
    with pytest.raises(ValueError):
        Health().register_loop("x", 0)


def test_beat_sets_heartbeat_gauge() -> None:
    metrics = Metrics()
    health = Health(metrics)
    before = time.time()
    health.beat("sweeper")
    value = metrics.registry.get_sample_value(
        "aiops_loop_last_beat_timestamp_seconds", {"loop": "sweeper"}
    )
    assert value is not None
    assert before <= value <= time.time()


def test_readiness_states() -> None:
    health = Health()
    assert (health.is_ready(), health.readiness()) == (False, "starting")
    health.mark_started()
    assert (health.is_ready(), health.readiness()) == (True, "ready")
    health.mark_draining()
    assert (health.is_ready(), health.readiness()) == (False, "draining")
    assert health.draining is True
