"""`aiops-agent demo --json`: the README's first command, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow  # ~22 s (the whole tour); .ci/run's -m slow stage runs it
@pytest.mark.timeout(300)
def test_demo_recovers_every_scenario_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOPS_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "aiops_agent", "demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    incidents = json.loads(done.stdout)  # stdout carries only the JSON
    by_type = sorted((i["resource_type"], i["workflow_state"]) for i in incidents)
    assert by_type == [
        ("ec2", "COMPLETED"),
        ("ec2", "COMPLETED"),
        ("ec2", "IGNORED"),
        ("lambda", "COMPLETED"),
        ("ssm", "COMPLETED"),
    ]
    (pipeline,) = [i for i in incidents if i["workflow_state"] == "IGNORED"]
    assert pipeline["recovery_actions"] == [] and pipeline["related_event_ids"]
    # The pipeline's call and the state change it caused arrive in either order: the call
    # explains the waiting state change, or the state change joins the recorded call.
    assert any("demo-deploy-pipeline" in e["detail"] for e in pipeline["timeline"])
    incidents = [i for i in incidents if i is not pipeline]
    for incident in incidents:
        assert incident["verification"]["status"] == "PASSED"
        states = [entry["state"] for entry in incident["timeline"]]
        assert states[0] == "ANALYZING" and "VERIFYING" in states and states[-1] == "COMPLETED"
    # The TerminateInstances call and the `terminated` state change are put together and read
    # in either order (SQS does not keep order): whichever comes first opens the incident and
    # the other joins it.
    terminated = [
        i for i in incidents if i["event"]["action"] in ("TerminateInstances", "state:terminated")
    ]
    assert len(terminated) == 1, "the CloudTrail call and the state change made one incident"
    assert terminated[0]["related_event_ids"], "the other of the two joined the incident"
