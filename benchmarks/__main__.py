"""The whole benchmark suite, one benchmark after another, each in its own process.

    python -m benchmarks                  # default settings: rewrites benchmarks/RESULTS.md (~25 min, 2 cores)
    python -m benchmarks --quick          # tiny settings, prints only, writes nothing (well under a minute)
    python -m benchmarks --only loss_speed downstream

``--eval`` and ``--train`` name the photo folders (defaults: ``../shared/data``'s cbsd68 and cset14
for evaluation, kodak24 for the downstream networks' training). The run ends with the wall time of
each benchmark and a non-zero exit status if any of them failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

SUITE = ("predictor_speed", "engine_speed", "loss_speed", "predictor_accuracy", "scorer_accuracy", "downstream")
EVAL = ["../shared/data/cbsd68", "../shared/data/cset14"]
TRAIN = "../shared/data/kodak24"


def commands(quick: bool, eval_dirs: list[str], train: str, only: list[str] | None = None,
             runs: str | None = None) -> list[tuple[str, list[str]]]:
    """(name, argv) of each benchmark to run, in suite order.

    Example:
        >>> [name for name, _ in commands(True, EVAL, TRAIN, ["downstream", "engine_speed"])]
        ['engine_speed', 'downstream']
    """
    data = {
        "predictor_accuracy": ["--data", eval_dirs[0]],
        "scorer_accuracy": ["--data", *eval_dirs],
        "downstream": ["--train", train, "--eval", *eval_dirs, *(["--out", runs] if runs else [])],
    }
    return [(name, [*data.get(name, []), *(["--quick"] if quick else [])])
            for name in SUITE if only is None or name in only]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny settings for a smoke test; prints, writes nothing")
    ap.add_argument("--only", nargs="+", choices=SUITE, default=None, help="run only these benchmarks")
    ap.add_argument("--eval", nargs="+", default=EVAL, help="evaluation photo folders (never trained on)")
    ap.add_argument("--train", default=TRAIN, help="training photos of the downstream networks")
    ap.add_argument("--runs", default=None, help="where the downstream models and JSON go (default: its own)")
    args = ap.parse_args(argv)
    times: list[tuple[str, float, int]] = []
    for name, extra in commands(args.quick, args.eval, args.train, args.only, args.runs):
        cmd = [sys.executable, "-m", f"benchmarks.{name}", *extra]
        print(f"\n=== {' '.join(['python', *cmd[1:]])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call(cmd)
        times.append((name, time.perf_counter() - start, rc))
    print("\n| benchmark | wall s | status |\n|---|---:|---|")
    for name, seconds, rc in times:
        print(f"| {name} | {seconds:.0f} | {'ok' if rc == 0 else f'FAILED ({rc})'} |")
    print(f"| **total** | {sum(t for _, t, _ in times):.0f} | |")
    return 0 if all(rc == 0 for _, _, rc in times) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
