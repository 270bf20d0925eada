"""The operator's HTTP endpoints: `/healthz` (liveness), `/readyz` (readiness), `/metrics`, and
the console under `/console/` when one is given (see `aiops_agent.console`)."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics

log = structlog.get_logger(__name__)

SHUTDOWN_TIMEOUT_S = 5.0
"""How long `close()` lets in-flight requests finish: well inside ECS's 30 s stop timeout."""


CONSOLE_PREFIX = "/console"


def build_app(
    health: Health, metrics: Metrics, console: web.Application | None = None
) -> web.Application:
    """The aiohttp application; exposed for tests that drive it without a socket."""

    async def healthz(_: web.Request) -> web.Response:
        ok, loops = health.alive()
        status = 200 if ok else 503
        if not ok:
            stale = sorted(name for name, d in loops.items() if not d["ok"])
            log.warning("health.liveness_failed", stale_loops=stale)
        return web.json_response({"status": "ok" if ok else "stale", "loops": loops}, status=status)

    async def readyz(_: web.Request) -> web.Response:
        state = health.readiness()
        return web.json_response({"status": state}, status=200 if state == "ready" else 503)

    async def metrics_handler(_: web.Request) -> web.Response:
        payload, content_type = metrics.render()
        response = web.Response(body=payload)
        # The exposition content type carries parameters (version, charset) that aiohttp's
        # `content_type=` argument refuses, so set the raw header.
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    if console is not None:

        async def console_root(_: web.Request) -> web.Response:
            raise web.HTTPMovedPermanently(f"{CONSOLE_PREFIX}/")

        app.router.add_get(CONSOLE_PREFIX, console_root)
        app.add_subapp(CONSOLE_PREFIX, console)
    return app


class HttpServer:
    """A running server; `port` is the bound port (useful when asked for port 0)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self.host = host
        self.port = port
        self._closed = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and release the socket; bounded, and safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S + 2):
                await asyncio.shield(self._runner.cleanup())
        except TimeoutError:
            log.warning("http.close_timeout", timeout_s=SHUTDOWN_TIMEOUT_S + 2)
        log.info("http.stopped", host=self.host, port=self.port)


async def start_http_server(
    health: Health,
    metrics: Metrics,
    host: str,
    port: int,
    console: web.Application | None = None,
) -> HttpServer:
    """Serve the endpoints on `host:port` (port 0: an ephemeral port, see `HttpServer.port`)."""
    runner = web.AppRunner(
        build_app(health, metrics, console),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound = int(address[1])
            break
    log.info("http.started", host=host, port=bound)
    return HttpServer(runner, host, bound)
