"""How long a `feedmill` command takes as a user runs it: start-up, imports, the config.

Commands: `feedmill --version`, `feedmill check-config` and `feedmill sources` (one page) with
1,000 and 50,000 sources on SQLite (the config and database made as bench/scale.py makes
them: its ``write_config``; the database filled by one untimed `feedmill sources`).

Each command runs from this checkout and, with ``--base REF``, from that commit too (a copy
made with ``git archive``), with the floor in the same rounds, interleaved:

    floor     `python -c pass` and `python -c "import sqlalchemy"` (the interpreter, and
              the one library every database command needs)
    ratios    the command's median wall time and CPU / the sqlalchemy floor's

    python bench/cli.py [--sources 1000,50000] [--rounds 5] [--base main]

Wall and CPU (the child's user + system) are medians of the rounds. The machine may be
shared: compare within one run. Figures go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from scale import write_config  # noqa: E402

FLOORS = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import sqlalchemy'": ["-c", "import sqlalchemy"],
}
FLOOR = "python -c 'import sqlalchemy'"


def checkout(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` in ``folder`` (git archive: the repository is only read)."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def timed(argv: list[str], tree: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process, run from ``tree``: its packages come first
    on sys.path (the working directory precedes the installed editable finder)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=tree, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def measure(cases: dict[str, tuple[list[str], Path]], rounds: int) -> dict[str, list[tuple]]:
    """Every case once a round, the rounds interleaved; one untimed warm-up round first."""
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for round_ in range(rounds + 1):
        for name, (argv, tree) in cases.items():
            result = timed(argv, tree)
            if round_:
                found[name].append(result)
    return found


def report(title: str, found: dict[str, list[tuple]]) -> None:
    """Medians, and each as a multiple of the floor's (wall and CPU apart: on a loaded
    machine the wall time is mostly waiting for a core)."""
    floor_wall, floor_cpu = (statistics.median(r[i] for r in found[FLOOR]) for i in (0, 1))
    print(f"\n{title}")
    print(f"  {'command':44} {'wall s':>7} {'CPU s':>7} {'wall/floor':>11} {'CPU/floor':>10}")
    for name, results in found.items():
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        ratios = f"{wall / floor_wall:10.1f}x {cpu / floor_cpu:9.1f}x"
        print(f"  {name:44} {wall:7.2f} {cpu:7.2f} {ratios}")


def commands(config: Path) -> dict[str, list[str]]:
    feedmill = ["-m", "feedmill", "--config", str(config)]
    return {
        "feedmill --version": ["-m", "feedmill", "--version"],
        "feedmill check-config": [*feedmill, "check-config"],
        "feedmill sources": [*feedmill, "sources"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", default="1000,50000", help="source counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", default="", help="a git ref to compare with (e.g. main)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"cli: load average {load:.1f} on {os.cpu_count()} cores (shared with other work)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trees = {"this": ROOT}
        if args.base:
            trees[args.base] = checkout(args.base, folder / "base")
        for sources in (int(n) for n in args.sources.split(",")):
            config = folder / f"config-{sources}.yaml"
            urls = [f"http://127.0.0.{1 + i % 20}:9/f/{i}.xml" for i in range(sources)]
            write_config(config, f"sqlite:///{folder / f'{sources}.db'}", 9, urls)
            timed(commands(config)["feedmill sources"], ROOT)  # migrate, sync the sources
            cases = {name: (argv, ROOT) for name, argv in FLOORS.items()}
            for label, tree in trees.items():
                for name, argv in commands(config).items():
                    cases[f"{name} ({label})" if len(trees) > 1 else name] = (argv, tree)
            found = measure(cases, args.rounds)
            size = config.stat().st_size / 1e6
            title = f"{sources} sources ({size:.1f} MB of config), medians of {args.rounds}"
            report(title, found)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
