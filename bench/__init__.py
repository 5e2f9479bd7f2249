"""Benchmarks for sb3_mario (`make bench`). Each comparison runs its contenders in one process, alternating."""

from sb3_mario._quiet import silence_gym_notice

silence_gym_notice()  # before any benchmark imports stable_baselines3 (and, through it, legacy gym)
