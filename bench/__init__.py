"""The benchmarks: `python -m bench` (or `make bench`) regenerates bench/results and
docs/BENCHMARKS.md; `python -m bench NAME [--events N]` runs one."""
