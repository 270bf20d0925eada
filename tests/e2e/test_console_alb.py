"""`AIOPS_CONSOLE_AUTH=alb-oidc` over HTTP against a daemon on moto: only the configured load
balancer's signed header opens the console (keys made here, served from loopback)."""

from __future__ import annotations

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import WorkflowState
from tests.alb_keys import ALB_ARN, OTHER_ALB_ARN, KeyServer, alb_token, new_key
from tests.e2e.conftest import MakeStack, StartAgent
from tests.e2e.console_client import ConsoleUser, csrf_of, make_waiting_incident, state_of


async def test_only_the_albs_signed_header_opens_the_console(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, moto_endpoint: str
) -> None:
    stack = await make_stack()
    key, kid = new_key(), KeyServer.fresh_kid()
    async with KeyServer({kid: key}) as keys:
        agent = await start_agent(
            stack,
            moto_endpoint,
            AIOPS_CONSOLE_AUTH="alb-oidc",
            AIOPS_CONSOLE_ALB_ARN=ALB_ARN,
            AIOPS_CONSOLE_ALB_KEYS_URL=keys.url,
        )
        incident_id, _ = await make_waiting_incident(aws, stack)
        page = f"/console/incidents/{incident_id}"
        refused = {
            "no header": None,
            "forged (another key, same kid)": alb_token(new_key(), kid),
            "expired": alb_token(key, kid, expires_in=-300),
            "another load balancer": alb_token(key, kid, signer=OTHER_ALB_ARN),
            "unknown kid": alb_token(new_key(), KeyServer.fresh_kid()),
            "not a JWT": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        }
        async with ConsoleUser(agent.url) as anyone:
            for why, token in refused.items():
                headers = {"x-amzn-oidc-data": token} if token else {}
                for path in ("/console/incidents", page):
                    status, _, body = await anyone.get(path, headers=headers)
                    assert status == 401, (why, path)
                    assert incident_id not in body
                status, _, _ = await anyone.post(
                    f"{page}/reject", {"csrf": "x", "reason": "no"}, headers=headers
                )
                assert status == 401, why
        assert (await state_of(stack, incident_id)).workflow_state is (
            WorkflowState.AWAITING_APPROVAL
        )
        # The load balancer's own header: the list, the page, and a rejection with its CSRF.
        signed = {"x-amzn-oidc-data": alb_token(key, kid, email="carol@example.com")}
        async with ConsoleUser(agent.url, headers=signed) as carol:
            status, headers, html = await carol.get("/console/incidents")
            assert status == 200 and incident_id in html and "carol@example.com" in html
            cookie = headers["Set-Cookie"].lower()
            assert "aiops_console_csrf=" in cookie and "samesite=strict" in cookie
            assert "httponly" in cookie
            status, headers, html = await carol.get(page)
            assert status == 200 and "Set-Cookie" not in headers  # the same CSRF cookie
            token = csrf_of(html)
            status, _, _ = await carol.post(f"{page}/reject", {"reason": "planned work"})
            assert status == 403
            status, headers, _ = await carol.post(
                f"{page}/reject", {"csrf": token, "reason": "planned work"}
            )
            assert status == 303 and headers["Location"].endswith("done=rejected")
        done = await state_of(stack, incident_id)
        assert done.workflow_state is WorkflowState.REJECTED
        assert done.timeline[-1].detail == "rejected by carol@example.com: planned work"
        assert keys.requests.count(kid) == 1  # one fetch, then the cache
