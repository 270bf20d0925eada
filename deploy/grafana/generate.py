"""Write the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json), or check them.

    python deploy/grafana/generate.py          # rewrite the three dashboards
    python deploy/grafana/generate.py --check  # exit 1 if one is stale

The dashboards are data, built from the panel helpers of grafana_panels.py so that every panel has
the same datasource (the provisioned one) and layout rules: grafana_incidents.py, and
grafana_analysis.py (log analyzer, AI performance). tests/unit/test_dashboards.py checks that
every metric a panel queries is one the agent exports. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from grafana_analysis import ai_performance, log_analyzer  # noqa: E402
from grafana_incidents import incidents  # noqa: E402

DASHBOARDS_DIR = HERE / "dashboards"

DASHBOARDS = {
    "incidents.json": incidents,
    "log-analyzer.json": log_analyzer,
    "ai-performance.json": ai_performance,
}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = DASHBOARDS_DIR / name
        text = render(name)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python deploy/grafana/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
