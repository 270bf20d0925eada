"""Work that a stop signal may cut short: the daemon's loops must end within the 30 s stop timeout
(ECS `stopTimeout`) however long their current piece of work would take."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
CANCEL_WAIT_S = 5.0
"""How long cancelled work may take to unwind (its `finally` blocks) before it is left behind."""


class Abandoned(Exception):
    """The work was cancelled because the daemon is stopping."""


async def until_stopped(work: Awaitable[T], stop: asyncio.Event, grace_s: float = 0.0) -> T:
    """`await work`, unless `stop` is set first: then `work` gets `grace_s` more seconds to end
    and is cancelled after that (Abandoned is raised). Cancelling the caller cancels `work`."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and grace_s > 0:
            await asyncio.wait({task}, timeout=grace_s)
        if task.done():
            return task.result()
        await _cancel(task)
        raise Abandoned
    finally:
        stopping.cancel()
        if not task.done():
            await _cancel(task)


async def _cancel(task: asyncio.Future[T]) -> None:
    task.cancel()
    await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: an error while unwinding is not an unhandled one
