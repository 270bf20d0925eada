"""The console in a real browser: Debian's chromium, headless, driven by Playwright.

Signs in, opens the waiting incident, approves it and sees COMPLETED, with no JavaScript of the
page's own and no Content-Security-Policy violation. Skips, saying why, where chromium or the
`playwright` package (extra `browser`) is missing. With CONSOLE_SCREENSHOTS_DIR=DIR it also
saves the screenshots docs/ carries (console-list.png, console-incident.png,
console-incident-completed.png, console-controls.png).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import WorkflowState
from tests.aws_proxy import AwsProxy
from tests.e2e.agent_process import ec2_state_event, launch_instances, wait_for
from tests.e2e.conftest import MakeStack, StartAgent
from tests.e2e.console_client import TOKEN, TOKEN_CONSOLE, make_waiting_incident, state_of

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(
        async_playwright is None,
        reason="playwright is not installed (pip install -e '.[browser]')",
    ),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


async def _completed_incident(aws: AwsClients, stack: Any) -> str:
    """A second incident, recovered without a person, so the list shows both kinds."""
    ec2 = await aws.client("ec2")
    (instance_id,) = await launch_instances(ec2, 1)
    sqs = await aws.client("sqs")
    body = json.dumps(ec2_state_event(instance_id, "stopped"))
    await sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)

    async def done() -> bool:
        found = await stack.store.list_incidents(state=WorkflowState.COMPLETED)
        return any(i.resource_id == instance_id for i in found)

    await wait_for(done, within=60, what="the unattended incident completed")
    return instance_id


@pytest.mark.timeout(240)
async def test_sign_in_open_the_waiting_incident_approve_it_and_see_completed(
    aws: AwsClients,
    make_stack: MakeStack,
    start_agent: StartAgent,
    proxy: AwsProxy,
    tmp_path: Path,
) -> None:
    stack = await make_stack()
    agent = await start_agent(stack, proxy.url, **TOKEN_CONSOLE)
    await _completed_incident(aws, stack)
    incident_id, instance_id = await make_waiting_incident(aws, stack)
    started_before = proxy.count("StartInstances")
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS_DIR", tmp_path))
    os.makedirs(shots, exist_ok=True)
    violations: list[str] = []

    assert async_playwright is not None
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        try:
            context = await browser.new_context(
                java_script_enabled=False, viewport={"width": 1280, "height": 900}
            )
            page = await context.new_page()
            page.on(
                "console",
                lambda msg: (
                    violations.append(msg.text) if "Content Security Policy" in msg.text else None
                ),
            )
            await page.goto(f"{agent.url}/console/incidents")
            assert "/console/signin" in page.url  # not signed in: sent to the sign-in page
            await page.fill("input[name=name]", "alice")
            await page.fill("input[name=token]", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/console/incidents")
            row = page.locator("tr", has_text=instance_id)
            assert "AWAITING_APPROVAL" in await row.inner_text()
            await page.screenshot(path=str(shots / "console-list.png"), full_page=True)

            await row.get_by_role("link").click()
            await page.wait_for_url(f"**/console/incidents/{incident_id}")
            assert await page.locator("#state").inner_text() == "AWAITING_APPROVAL"
            await page.screenshot(path=str(shots / "console-incident.png"), full_page=True)

            await page.fill("form[action$='/approve'] input[name=reason]", "instance must run")
            await page.click("button.approve")
            await page.wait_for_url("**done=approved")
            assert "Approved: the plan runs now" in await page.content()

            async def completed() -> bool:
                await page.reload()
                return await page.locator("#state").inner_text() == "COMPLETED"

            await wait_for(completed, within=60, interval=0.5, what="COMPLETED on the page")
            body = await page.locator("main").inner_text()
            assert "approved by alice (token sign-in): instance must run" in body
            await page.screenshot(
                path=str(shots / "console-incident-completed.png"), full_page=True
            )

            # The controls page: a silence added through its form, listed with its author.
            await page.click("text=Silences, freezes, pause")
            await page.fill("textarea[name=matchers]", "resource_id=i-0abc*")
            await page.fill("form[action$='/controls/silences'] input[name=reason]", "patching")
            await page.click("text=Add silence")
            await page.wait_for_url("**done=silence-added")
            assert "alice (token sign-in)" in await page.locator("main").inner_text()
            await page.screenshot(path=str(shots / "console-controls.png"), full_page=True)
        finally:
            await browser.close()
    assert violations == []
    assert proxy.count("StartInstances") == started_before + 1
    assert (await state_of(stack, incident_id)).workflow_state is WorkflowState.COMPLETED
