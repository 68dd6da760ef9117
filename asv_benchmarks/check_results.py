"""Check a saved asv run: exit 1 if any benchmark failed or if none ran.

``asv run`` exits 0 even when benchmarks fail, so CI runs this after
``asv run --python=same --quick --set-commit-hash HASH``::

    python asv_benchmarks/check_results.py HASH

Skipped benchmarks (``NotImplementedError`` in ``setup``: no GPU, torch, jax/optax or
``fastadam.minimize``) are counted, not failed. asv imports this module while discovering
benchmarks; it defines none.
"""

import argparse
import glob
import json
import math
import os
import sys


def check(commit, results_dir):
    """Return (ran, skipped, failed names, result file) for the newest run of ``commit``."""
    with open(os.path.join(results_dir, "benchmarks.json")) as f:
        names = [k for k in json.load(f) if k != "version"]
    files = glob.glob(os.path.join(results_dir, "*", f"{commit[:8]}-*.json"))
    if not files:
        raise SystemExit(f"no asv results for commit {commit[:8]} under {results_dir}")
    path = max(files, key=os.path.getmtime)
    with open(path) as f:
        results = json.load(f)["results"]
    ran = skipped = 0
    failed = []
    for name in names:
        if name not in results:
            failed.append(f"{name} (no result)")
            continue
        values = results[name][0]
        values = values if isinstance(values, list) else [values]
        for i, value in enumerate(values):
            if value is None:
                failed.append(f"{name} [parameter set {i}]")
            elif isinstance(value, float) and math.isnan(value):
                skipped += 1
            else:
                ran += 1
    return ran, skipped, failed, path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the hash given to asv run --set-commit-hash")
    parser.add_argument("--results-dir", default=".asv/results")
    args = parser.parse_args(argv)
    ran, skipped, failed, path = check(args.commit, args.results_dir)
    print(f"asv results {path}: {ran} ran, {skipped} skipped, {len(failed)} failed")
    for name in failed:
        print(f"  FAILED: {name}")
    if failed or ran == 0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
