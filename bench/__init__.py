"""Benchmarks: `make bench`. Numbers come from runs on this machine, printed as tables."""
