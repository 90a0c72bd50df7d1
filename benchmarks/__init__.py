"""Benchmarks: ``python -m benchmarks.run SUITE|all`` writes results/SUITE.md and BENCHMARKS.md."""
