"""Per-execution cost of the sandbox vs a fresh interpreter that imports the workflow library.

Runs a trivial workflow script (one agent turn, answered instantly) N times through the sandbox
Runner and compares the median with `python -c "import metaagentx.mas"` started fresh each time
(the paper's approach), measured in this same process. Acceptance: median overhead <= 10 ms and
>= 20x below baseline, on the paced latency.

- paced: one execution at a time, with a short untimed pause between them, as in training where
  every execution mostly waits on generation; the fork server refills its pool of confined
  children in those pauses, so this is the latency an execution sees.
- back-to-back: one execution at a time with no pause; the pool cannot keep up, so each
  execution also waits for a child to finish confining itself (the worst case for latency).
- concurrent: N executions at once (max_concurrency 8): throughput, bounded by CPU.

    PYTHONPATH=src python bench/sandbox.py [--n 200] [--isolation auto]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

from metaagentx.llm.base import GenerationRequest, GenerationResult
from metaagentx.sandbox.launch import package_root
from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings

SCRIPT = (
    "from workflow import AgentNode\n"
    "AgentNode('solver', 'Answer the question.', max_turns=1).run(question)\n"
)


class InstantGenerator:
    """Answers at once, so what is timed is the sandbox, not generation."""

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        return GenerationResult([1], [2], [0.0], "\\boxed{42}", "stop")


def fresh_interpreter_ms(n: int) -> list[float]:
    env = {"PYTHONPATH": str(package_root()), "PATH": os.environ.get("PATH", "/usr/bin")}
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import metaagentx.mas"], env=env, check=True)
        times.append((time.perf_counter() - t) * 1e3)
    return times


async def sandbox_ms(runner: Runner, n: int, pause_s: float) -> list[float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        result = await runner.run(SCRIPT, {"question": f"q{i}"})
        times.append((time.perf_counter() - t) * 1e3)
        assert result.status == "ok", result.error
        await asyncio.sleep(pause_s)
    return times


async def throughput(runner: Runner, n: int) -> float:
    t = time.perf_counter()
    results = await runner.run_many([(SCRIPT, {"question": f"q{i}"}) for i in range(n)])
    assert all(r.status == "ok" for r in results)
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--baseline-n", type=int, default=20)
    parser.add_argument("--isolation", default="auto", choices=["auto", "strict", "process", "unsafe"])
    parser.add_argument("--pause-ms", type=float, default=20.0, help="untimed pause when paced")
    args = parser.parse_args()

    async def go() -> tuple[list[float], list[float], float, list[str]]:
        runner = Runner(
            InstantGenerator(), SandboxSettings(isolation=args.isolation, max_concurrency=8)
        )
        try:
            await runner.start()
            await sandbox_ms(runner, 10, args.pause_ms / 1e3)  # warm-up
            paced = await sandbox_ms(runner, args.n, args.pause_ms / 1e3)
            back_to_back = await sandbox_ms(runner, args.n, 0.0)
            return paced, back_to_back, await throughput(runner, args.n), runner.isolation
        finally:
            runner.close()

    load_before = os.getloadavg()
    paced, b2b, eps, layers = asyncio.run(go())
    base = fresh_interpreter_ms(args.baseline_n)
    load_after = os.getloadavg()
    med, base_med = statistics.median(paced), statistics.median(base)
    rows = [
        (f"sandbox, paced ({args.pause_ms:g} ms between runs)", paced),
        ("sandbox, back-to-back", b2b),
        ("fresh interpreter importing the workflow library", base),
    ]
    print(f"isolation={args.isolation}; layers: {', '.join(layers)}")
    print(
        "load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}; "
        "cpus: {}".format(*load_before, *load_after, os.cpu_count())
    )
    print(f"{'':52} {'median ms':>10} {'p90 ms':>9} {'ratio':>7}")
    for name, xs in rows:
        m = statistics.median(xs)
        p90 = sorted(xs)[int(0.9 * len(xs))]
        print(f"{name:52} {m:>10.2f} {p90:>9.2f} {base_med / m:>6.1f}x")
    print(f"concurrent throughput (8 at once): {eps:.0f} executions/s")
    ok = med <= 10.0 and base_med / med >= 20.0
    print(f"acceptance on paced (median <= 10 ms and >= 20x): {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
