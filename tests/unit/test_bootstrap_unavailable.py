"""An emulator without CodeBuild (LocalStack community) must not stop the whole bootstrap."""

from botocore.exceptions import ClientError

from aiops_agent.provision.bootstrap import _service_unavailable


def error(code: str, message: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "BatchGetProjects",
    )


def test_not_implemented_answers_are_recognised() -> None:
    assert _service_unavailable(
        error(
            "InternalFailure", "API for service 'codebuild' not yet implemented or pro feature", 501
        )
    )
    assert _service_unavailable(error("Whatever", "", 501))
    assert _service_unavailable(error("NotImplemented", "", 400))


def test_real_errors_are_not_hidden() -> None:
    assert not _service_unavailable(error("AccessDeniedException", "not authorized", 400))
    assert not _service_unavailable(error("InvalidInputException", "bad name", 400))
