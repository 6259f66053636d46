"""The benchmark harness behind `scripts/benchmark.py` (one job a module)."""
