"""Where the benchmarks find the research data (Loghub-2k, NAB): not in the repository.

Loghub and NAB are large and licensed for research, so they stay outside the checkout. A
benchmark that needs them reads `--data DIR`, else `$AIOPS_BENCH_DATA/<name>`, else
`../shared/data/<name>` beside the checkout; when the folder is absent it says so in one line
and exits 2 instead of failing on a missing file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "AIOPS_BENCH_DATA"
"""A folder holding `loghub/` and `nab/` (the layout of ../shared/data)."""


def data_root() -> Path:
    configured = os.environ.get(DATA_ENV)
    return Path(configured) if configured else ROOT.parent / "shared" / "data"


def default_dir(name: str) -> Path:
    return data_root() / name


def absent(benchmark: str, what: str, folder: Path, needed: Path) -> bool:
    """True (and one line on stderr) when `needed` under `folder` is not there."""
    if needed.exists():
        return False
    print(
        f"bench {benchmark}: {what} not found at {folder} (no {needed.name}); pass --data DIR "
        f"or set {DATA_ENV}=DIR (a folder with loghub/ and nab/); skipped",
        file=sys.stderr,
    )
    return True
