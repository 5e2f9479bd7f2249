"""Benchmarks for sb3_mario (`make bench`). Each comparison runs its contenders in one process, alternating."""
