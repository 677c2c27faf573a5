"""Wall time and peak memory of `metaagentx quickstart`, default against `--fast`.

Each run is a fresh `metaagentx quickstart` process (as a user would start it); the peak RSS is
the largest resident set of that process or any process it waited for (`os.wait4`), so the
sandbox's fork server and its children count too. The stage timings and the RL gain come from
the run's own `quickstart.json`. The issue's targets: default <= 600 s and <= 4 GB on 2 cores,
`--fast` <= 120 s.

    python bench/quickstart.py [--out DIR] [--seed S] [--only fast|default]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

TARGETS = {"fast": (120.0, 4096.0), "default": (600.0, 4096.0)}


def run_quickstart(out: Path, seed: int, fast: bool) -> dict:
    """Run the CLI in a child process; wall seconds, peak RSS (MB) and its quickstart.json."""
    shutil.rmtree(out, ignore_errors=True)
    executable = shutil.which("metaagentx")
    if executable is None:
        raise SystemExit("the metaagentx command is not on PATH: pip install -e . first")
    command = [executable, "quickstart", "--out", str(out)]
    command += ["--seed", str(seed)] + (["--fast"] if fast else [])
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"quickstart failed ({command}):\n{stderr[-4000:]}")
    summary = json.loads((out / "quickstart.json").read_text())
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["fast", "default"], default=None)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-quickstart-"))
    load = os.getloadavg()
    runs = {}
    for name in ("fast", "default"):
        if args.only in (None, name):
            runs[name] = run_quickstart(root / name, args.seed, fast=name == "fast")
    print(f"load average before: {load[0]:.2f}; cpus: {os.cpu_count()}; runs in {root}")
    # the stages the runs timed, in their order ("sft" includes the model build and collection)
    stages = list(dict.fromkeys(s for run in runs.values() for s in run["summary"]["timings_s"]))
    stages = [s for s in stages if s != "total"]
    header = f"{'run':<9}{'wall s':>8}{'peak MB':>9}{'vs fast':>9}" + "".join(
        f"{s:>10}" for s in stages
    )
    print(header)
    base = runs.get("fast", {}).get("wall_s")
    for name, run in runs.items():
        timings = run["summary"]["timings_s"]
        ratio = f"{run['wall_s'] / base:.1f}x" if base else "-"
        cells = "".join(f"{timings.get(s, float('nan')):>10.1f}" for s in stages)
        print(f"{name:<9}{run['wall_s']:>8.1f}{run['peak_rss_mb']:>9.0f}{ratio:>9}{cells}")
    for name, run in runs.items():
        gain = run["summary"].get("rl_gain_designed")
        accuracy = run["summary"].get("accuracy", {})
        if gain:
            print(
                f"{name}: designed accuracy after SFT "
                f"{100 * accuracy['after_sft']['designed']:.1f}% -> after RL "
                f"{100 * accuracy['after_rl']['designed']:.1f}%; gain {100 * gain['mean']:+.1f} "
                f"points (95% CI {100 * gain['low']:+.1f} to {100 * gain['high']:+.1f}, "
                f"{gain['problems']} problems, avg@{gain['k']})"
            )
        wall_target, rss_target = TARGETS[name]
        ok = run["wall_s"] <= wall_target and run["peak_rss_mb"] <= rss_target
        print(
            f"{name}: target <= {wall_target:.0f} s and <= {rss_target:.0f} MB: "
            f"{'PASS' if ok else 'FAIL'}"
        )


if __name__ == "__main__":
    main()
