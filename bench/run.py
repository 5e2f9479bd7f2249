"""`make bench`: every benchmark, one after another (never two at once on a 2-core machine)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# name -> module, imported only when run: the train benchmark's tutorial baseline needs legacy gym (Python 3.11)
BENCHES = {
    "env": "bench.bench_env",
    "snapshots": "bench.bench_snapshots",
    "collect": "bench.bench_collect",
    "memory": "bench.bench_memory",
    "learner": "bench.bench_learner",
    "profile": "bench.bench_profile",
    "checkpoint": "bench.bench_checkpoint",
    "train": "bench.bench_train",
    "eval": "bench.bench_eval",
}


# what a benchmark needs that one install path lacks: the tutorial's loop runs on legacy gym (Python < 3.13 only),
# snapshots on nes-py 9 (Python >= 3.13 only)
NEEDS = {
    "train": (True, "the tutorial baseline's legacy gym"),
    "snapshots": (False, "nes-py 9's snapshots"),
    "profile": (False, "nes-py 9's snapshots (the recipe's frontier starts)"),
}


def unavailable(name: str) -> str | None:
    """Why benchmark ``name`` cannot run on this install path, or ``None`` if it can."""
    if name not in NEEDS:
        return None
    legacy, what = NEEDS[name]
    if legacy == (sys.version_info < (3, 13)):
        return None
    return f"{name}: needs {what} (Python {'< 3.13' if legacy else '>= 3.13'}); this is Python {sys.version.split()[0]}"


def main(names: list[str]) -> None:
    tables, skipped = [], []
    for name in names or list(BENCHES):
        reason = unavailable(name)
        if reason is not None:
            print(f"skipped {reason}")
            skipped.append(name)
            continue
        module = importlib.import_module(BENCHES[name])
        tables.append(f"### {name}\n\n{module.table(module.run())}")
        print(tables[-1])
    if skipped and not names:
        print(f"bench/README.md not refreshed: {', '.join(skipped)} did not run on this install path")
    elif not names:  # a full run refreshes the tables kept in bench/README.md
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
    for name in names:
        reason = unavailable(name)
        if reason is not None:
            p.error(f"cannot run {reason}")
    return names


if __name__ == "__main__":
    main(parse_args())
