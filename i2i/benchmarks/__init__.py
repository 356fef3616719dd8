"""Benchmarks: latency, throughput and memory of generators, side by side with baselines."""
