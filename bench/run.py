"""`make bench`: every benchmark, one after another (never two at once on a 2-core machine)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

# name -> module, imported only when run: the train benchmark's tutorial baseline needs legacy gym (Python 3.11)
BENCHES = {
    "env": "bench.bench_env",
    "snapshots": "bench.bench_snapshots",
    "collect": "bench.bench_collect",
    "memory": "bench.bench_memory",
    "learner": "bench.bench_learner",
    "train": "bench.bench_train",
    "eval": "bench.bench_eval",
}


def main(names: list[str]) -> None:
    tables = []
    for name in names or list(BENCHES):
        module = importlib.import_module(BENCHES[name])
        tables.append(f"### {name}\n\n{module.table(module.run())}")
        print(tables[-1])
    if not names:  # a full run refreshes the tables kept in bench/README.md
        readme = Path(__file__).with_name("README.md")
        text = readme.read_text() if readme.exists() else ""
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            tail = rest.split(end, 1)[1]
            readme.write_text(f"{head}{start}\n{chr(10).join(tables)}{end}{tail}")


def parse_args(argv: list[str] | None = None) -> list[str]:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHES)} (default: all)")
    names: list[str] = p.parse_args(argv).names
    unknown = [name for name in names if name not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHES)}")
    return names


if __name__ == "__main__":
    main(parse_args())
