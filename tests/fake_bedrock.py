"""The fake Bedrock runtime for tests and the demo: see `aiops_agent.analysis.fake_bedrock`.

python -m tests.fake_bedrock --port N --script good
"""

from __future__ import annotations

import sys

from aiops_agent.analysis.fake_bedrock import (
    AUTO,
    PLANTED,
    SCRIPTS,
    FakeBedrock,
    Step,
    auto_reply,
    converse_body,
    log_verdict,
    main,
    malformed_json,
    refuse_tool_choice,
    server_error,
    stall,
    text_reply,
    throttle,
    tool_call,
    verdict,
)

__all__ = [
    "AUTO",
    "PLANTED",
    "SCRIPTS",
    "FakeBedrock",
    "Step",
    "auto_reply",
    "converse_body",
    "log_verdict",
    "main",
    "malformed_json",
    "refuse_tool_choice",
    "server_error",
    "stall",
    "text_reply",
    "throttle",
    "tool_call",
    "verdict",
]

if __name__ == "__main__":
    sys.exit(main())
