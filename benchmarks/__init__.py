"""Benchmark scripts for pixelperfect_loss (run as ``python -m benchmarks.<name>``)."""
