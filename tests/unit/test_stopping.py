"""`until_stopped`: work that the stop signal may cut short, within a grace."""

from __future__ import annotations

import asyncio

import pytest

from aiops_agent.sources.stopping import Abandoned, until_stopped


async def test_work_that_ends_first_gives_its_result() -> None:
    async def work() -> int:
        return 7

    assert await until_stopped(work(), asyncio.Event()) == 7


async def test_stop_gives_the_work_its_grace_then_cancels_it() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def quick() -> str:
        await stop.wait()
        await asyncio.sleep(0.01)
        return "done in grace"

    stop.set()
    with pytest.raises(Abandoned):
        await until_stopped(forever(), stop, grace_s=0.05)
    assert cancelled.is_set()
    assert await until_stopped(quick(), stop, grace_s=5) == "done in grace"


async def test_cancelling_the_caller_cancels_the_work() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    caller = asyncio.ensure_future(until_stopped(forever(), asyncio.Event()))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cancelled.is_set()
