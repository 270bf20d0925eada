"""The agent's own principal, as CloudTrail will name it."""

from fnmatch import fnmatchcase

from aiops_agent.aws.identity import principal_patterns


def test_assumed_role_session_matches_the_role_and_other_sessions() -> None:
    arn = "arn:aws:sts::123456789012:assumed-role/aiops-agent-task/abc123"
    patterns = principal_patterns(arn)
    for seen in (
        arn,
        "arn:aws:sts::123456789012:assumed-role/aiops-agent-task/other-session",
        "arn:aws:iam::123456789012:role/aiops-agent-task",
    ):
        assert any(fnmatchcase(seen, p) for p in patterns), seen
    for stranger in (
        "arn:aws:sts::123456789012:assumed-role/someone-else/abc123",
        "arn:aws:iam::123456789012:role/aiops-agent-task-evil",
        "arn:aws:sts::999999999999:assumed-role/aiops-agent-task/abc123",
    ):
        assert not any(fnmatchcase(stranger, p) for p in patterns), stranger


def test_a_user_is_itself() -> None:
    assert principal_patterns("arn:aws:iam::123456789012:user/ci") == [
        "arn:aws:iam::123456789012:user/ci"
    ]
