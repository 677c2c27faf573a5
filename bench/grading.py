"""Cost of the code-grading boundary: a test judged by a checker process the candidate cannot
reach, vs the old single-process harness (candidate and test in one interpreter).

Every HumanEval canonical solution (the `.jsonl.gz` fixture) is graded on its whole `check`
block twice, interleaved test by test so both see the same machine:
- boundary: `run_test` (what grading does now): the candidate is forked before the test exists,
  and every call crosses a socket as plain data;
- one process: `run_program` on prelude + program + test in one source, as the old harness ran
  it (the verdict channel in reach of the candidate; shown here only as the baseline).

    python bench/grading.py [--limit 164]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from metaagentx.sandbox.programs import run_program, run_test
from metaagentx.sandbox.settings import SandboxSettings
from metaagentx.tasks.code_harness import PRELUDE, checker_spec
from metaagentx.tasks.datasets import load_tasks

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tasks" / \
    "HumanEval.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=164)
    args = parser.parse_args()
    settings = SandboxSettings()
    tasks = load_tasks(str(FIXTURE), limit=args.limit)
    boundary, single = [], []
    for _ in range(2):  # the first round warms the fork server's pools
        boundary.clear()
        single.clear()
        for task in tasks:
            program = task.metadata["starter_code"] + task.metadata["reference_solution"]
            test = task.hidden_tests[0]
            spec = checker_spec(test, fn_name=task.metadata["fn_name"],
                                setup=task.metadata["starter_code"])
            start = time.perf_counter()
            checked = run_test(program, spec, prelude=PRELUDE, settings=settings)
            boundary.append(time.perf_counter() - start)
            assert checked.outcome == {"status": "passed"}, (task.id, checked.outcome)
            start = time.perf_counter()
            plain = run_program(f"{PRELUDE}\n{program}\n{test.input}", settings=settings)
            single.append(time.perf_counter() - start)
            assert plain.status == "ok", (task.id, plain.stderr[-300:])
    rows = [("boundary (checker + candidate processes)", boundary),
            ("one process (old harness, baseline)", single)]
    base = statistics.median(single)
    print(f"{len(tasks)} HumanEval check blocks, canonical solutions, all passed")
    print("| grading | median ms | p90 ms | vs one process |")
    print("|---|---:|---:|---:|")
    for name, times in rows:
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"| {name} | {1e3 * statistics.median(times):.2f} | {1e3 * p90:.2f} | "
              f"{statistics.median(times) / base:.2f}x |")


if __name__ == "__main__":
    main()
