"""`make bench`: every benchmark, one after another (never two at once on a 2-core machine)."""

from __future__ import annotations

import sys

from bench import bench_env, bench_learner, bench_memory

BENCHES = {"env": bench_env, "memory": bench_memory, "learner": bench_learner}


def main(names: list[str]) -> None:
    for name in names or list(BENCHES):
        module = BENCHES[name]
        print(f"## {name}\n")
        print(module.table(module.run()))


if __name__ == "__main__":
    main(sys.argv[1:])
