"""Benchmarks: each is run by a make target and writes bench/results/<name>.json."""
