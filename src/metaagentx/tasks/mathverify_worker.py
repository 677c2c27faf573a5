"""math-verify comparisons, in-process on the main thread or in a killable worker process.

math-verify bounds its own work with SIGALRM, which only works on the main thread, and a signal
cannot interrupt a long C-level computation (a huge integer power) anyway. Graders are called
from rollout worker threads, so off the main thread every comparison goes to a persistent worker
process (JSON lines over pipes) whose main thread can use the alarms, and which the host kills
and restarts when it overruns a hard deadline.

Comparisons are exact: math-verify rounds floats (`float_rounding`) and chops differences below
~1e-15 of its evaluation precision, so 0.3333333333 == 1/3 and 1/2^99 == 1/2^98 there. Here every
decimal is read as the exact rational it writes, and math-verify's numeric step is replaced, for
the duration of our call, by structural equality or sympy's `equals`, which says True only when it
proves the difference zero (simplification or a minimal polynomial); its symbolic step
(`simplify(a - b) == 0`) is exact already. A task-stated tolerance still applies, after that.

This file imports only the standard library, sympy and math_verify, and runs as a script
(`python mathverify_worker.py`) so the worker never needs our package on its path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _configs() -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]


def _exact_decimals(parsed: list[Any]) -> list[Any]:
    """Each decimal as the rational it writes (0.1 is 1/10, not the nearest binary float)."""
    from sympy import Basic, Float, MatrixBase, Rational

    out = []
    for item in parsed:
        if isinstance(item, (Basic, MatrixBase)):
            exact = {f: Rational(str(f)) for f in item.atoms(Float) if f.is_finite}
            item = item.xreplace(exact)
        out.append(item)
    return out


def _exact_numeric_eq(a: Any, b: Any, float_rounding: int, numeric_precision: int) -> bool:
    """Stands in for math-verify's `sympy_numeric_eq` (whose signature it keeps, rounding
    arguments unused): equal only if structurally equal or proven equal."""
    from math_verify.grader import safe_sympy_doit
    from sympy import Basic

    try:
        a, b = safe_sympy_doit(a), safe_sympy_doit(b)
        if a == b:
            return True
        if isinstance(a, Basic) and isinstance(b, Basic) and a.is_number and b.is_number:
            return a.equals(b) is True
    except Exception:  # sympy raises many kinds on odd input: "not shown equal"
        return False
    return False


@contextmanager
def _exact_comparison() -> Iterator[None]:
    """math-verify with its rounding/chopping numeric step swapped out, for one call."""
    from math_verify import grader

    original = grader.sympy_numeric_eq
    grader.sympy_numeric_eq = _exact_numeric_eq
    try:
        yield
    finally:
        grader.sympy_numeric_eq = original


def verify_strings(
    prediction: str, reference: str, tolerance: float | None = None, timeout_s: int = 5
) -> bool:
    """Exact math-verify equivalence of two already-extracted answers (call on the main thread)."""
    from math_verify import parse, verify

    configs = _configs()
    ref = parse(f"${reference}$", extraction_config=configs, parsing_timeout=timeout_s)
    pred = parse(f"${prediction}$", extraction_config=configs, parsing_timeout=timeout_s)
    if not ref or not pred:
        return False
    ref, pred = _exact_decimals(ref), _exact_decimals(pred)
    with _exact_comparison():
        if verify(ref, pred, timeout_seconds=timeout_s):
            return True
    if tolerance is not None:
        return _within_tolerance(ref[0], pred[0], tolerance)
    return False


def _within_tolerance(ref: Any, pred: Any, tolerance: float) -> bool:
    """Absolute tolerance for numbers, used only when the task states one."""
    try:
        import sympy

        if not (isinstance(ref, sympy.Basic) and isinstance(pred, sympy.Basic)):
            return False
        if ref.free_symbols or pred.free_symbols:
            return False
        return bool(abs(float(ref.evalf()) - float(pred.evalf())) <= tolerance)
    except (TypeError, ValueError, AttributeError):
        return False


def _serve() -> None:
    """Worker loop: a ready line, then one JSON reply per JSON request line."""
    verify_strings("1", "1")  # import sympy and math_verify before saying ready
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            ok = verify_strings(
                request["prediction"],
                request["reference"],
                request.get("tolerance"),
                int(request.get("timeout_s", 5)),
            )
            reply = {"ok": bool(ok)}
        except Exception as exc:  # a comparison error means "not equivalent", never a crash
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


STARTUP_DEADLINE_S = 120.0


def _readline(proc: subprocess.Popen[str], deadline_s: float) -> str | None:
    """One line from the worker, or None if it does not come within the deadline."""
    reply: list[str] = []
    stdout = proc.stdout
    if stdout is None:
        return None
    reader = threading.Thread(target=lambda: reply.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(deadline_s)
    if reader.is_alive() or not reply or not reply[0]:
        return None
    return reply[0]


class _Worker:
    """One worker process; restarted after a hard timeout or a crash."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str] | None:
        script = str(Path(__file__).resolve())
        proc = subprocess.Popen(
            [sys.executable, "-I", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.proc = proc
        if _readline(proc, STARTUP_DEADLINE_S) is None:
            self._kill()
        return self.proc

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def ensure_started(self) -> subprocess.Popen[str] | None:
        """The running process, started first if needed (call with `lock` held)."""
        if self.proc is None or self.proc.poll() is not None:
            return self._start()
        return self.proc

    def call(self, request: dict[str, Any], deadline_s: float) -> bool:
        with self.lock:
            proc = self.ensure_started()
            if proc is None or proc.stdin is None:
                return False
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except OSError:
                self._kill()
                return False
            line = _readline(proc, deadline_s)
            if line is None:
                self._kill()  # overran the deadline or died: never block the caller
                return False
            return bool(json.loads(line).get("ok", False))


class WorkerPool:
    """A few workers shared by all threads of the host process."""

    def __init__(self, size: int = 2) -> None:
        self._workers = [_Worker() for _ in range(max(1, size))]
        self._next = 0
        self._lock = threading.Lock()

    def verify(
        self, prediction: str, reference: str, tolerance: float | None = None, timeout_s: int = 5
    ) -> bool:
        with self._lock:
            worker = self._workers[self._next % len(self._workers)]
            self._next += 1
        request = {
            "prediction": prediction,
            "reference": reference,
            "tolerance": tolerance,
            "timeout_s": timeout_s,
        }
        # two parses and one verify each get timeout_s inside the worker, plus slack.
        return worker.call(request, deadline_s=3 * timeout_s + 2)

    def start(self) -> None:
        """Start every worker now, in parallel (each imports sympy: ~0.5-1 s), so the first
        comparisons of a run do not wait for it."""

        def start_one(worker: _Worker) -> None:
            with worker.lock:
                worker.ensure_started()

        threads = [threading.Thread(target=start_one, args=(w,)) for w in self._workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def close(self) -> None:
        for worker in self._workers:
            with worker.lock:
                worker._kill()


if __name__ == "__main__":
    _serve()
