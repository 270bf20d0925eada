.PHONY: bench test

# Regenerates bench/results/*.json and docs/BENCHMARKS.md (about 10-15 minutes on 2 cores).
bench:
	python -m bench

test:
	python -m pytest -q -x -p no:cacheprovider
