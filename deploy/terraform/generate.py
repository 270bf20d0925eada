"""Write the generated Terraform inputs from the code, or check that they are current.

    python deploy/terraform/generate.py          # rewrite both files
    python deploy/terraform/generate.py --check  # exit 1 if either is stale (CI, pre-commit)

- task_role_policy.json: the task role's policy, from the action catalog and the agent's own
  needs (aiops_agent.provision.iam_policy); a templatefile() template rendered in iam.tf.
- event_pattern.json: the EventBridge pattern of the events the agent consumes
  (aiops_agent.provision.bootstrap.event_pattern, the one `aiops-agent bootstrap` puts),
  read in events.tf.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aiops_agent.provision import iam_policy
from aiops_agent.provision.bootstrap import event_pattern

HERE = Path(__file__).resolve().parent


def render_event_pattern() -> str:
    return json.dumps(event_pattern(), indent=2) + "\n"


GENERATED: dict[str, Callable[[], str]] = {
    "task_role_policy.json": iam_policy.render,
    "event_pattern.json": render_event_pattern,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for name, render in GENERATED.items():
        path = HERE / name
        text = render()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print(
            f"stale: {', '.join(stale)}; run python deploy/terraform/generate.py", file=sys.stderr
        )
        return 1
    missing = iam_policy.unclassified()
    if missing:
        print(f"unclassified in iam_policy.ACTION_SCOPES: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
