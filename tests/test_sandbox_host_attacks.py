"""The host survives any execution: forged or malformed messages, floods and tool hogs end only
their own execution, benign executions beside them finish with unchanged results, and the
runner returns. Run as root and, in CI, as an unprivileged user."""

from __future__ import annotations

import asyncio
import resource
import time

from metaagentx.sandbox.runner import Runner
from metaagentx.sandbox.settings import SandboxSettings
from sandbox_support import ScriptedBatcher

BENIGN = "from workflow import AgentNode\nAgentNode('solver', 'Solve it.', max_turns=1).run(question)"
LLM_LINE = (
    '{"id": 1, "type": "llm", "agent": "a", "messages": [{"role": "user", "content": "%s"}]}\n'
    % ("x" * 2000)
)
HOSTILE = {
    # a final message whose numbers are not numbers (an unguarded float() crashed the rollout)
    "forged_final": (
        "import os\n"
        "os.write(3, b'{\"type\": \"final\", \"status\": \"ok\", \"final_output\": \"\\\\\\\\boxed{4}\", '\n"
        "         b'\"usage\": {\"agents\": \"many\"}, \"rusage\": {\"cpu_s\": \"x\"}, \"trace\": 7}\\n')\n"
        "os._exit(0)\n"
    ),
    # ~100 KB of nested brackets (json.loads raised RecursionError, which ValueError misses)
    "deep_json": "import os\nos.write(3, b'[' * 100_000 + b'\\n')\nimport time\ntime.sleep(30)\n",
    # a 6 MB line
    "six_mb_line": "import os\nos.write(3, b'\"' + b'x' * (6 << 20) + b'\"\\n')\nimport time\ntime.sleep(30)\n",
    # requests without ever reading a reply
    "flood": f"import os\nline = {LLM_LINE!r}.encode()\nwhile True:\n    os.write(3, line)\n",
}


def _run(jobs, settings, batcher=None, tools=None):
    async def go():
        runner = Runner(batcher or ScriptedBatcher(), settings)
        try:
            return await asyncio.gather(*(runner.run(s, t, tools=tools) for s, t in jobs))
        finally:
            runner.close()

    return asyncio.run(go())


def test_hostile_messages_end_only_their_own_execution() -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    jobs = [(src, {"question": name}) for name, src in HOSTILE.items()]
    jobs += [(BENIGN, {"question": "2+2"})] * 3
    results = _run(jobs, SandboxSettings(timeout_s=8.0))
    by_name = dict(zip(HOSTILE, results, strict=False))
    assert by_name["forged_final"].status == "no_agent_answer"  # no agent ever answered
    assert by_name["forged_final"].usage["agents"] == 0.0
    assert by_name["forged_final"].workflow_trace == []
    assert by_name["deep_json"].error_kind == "protocol"
    assert by_name["six_mb_line"].error_kind == "message_bytes"
    assert by_name["flood"].status == "limit_exceeded"
    assert by_name["flood"].error_kind in ("pending_requests", "llm_calls")
    for result in results[len(HOSTILE):]:
        assert result.status == "ok" and result.final_output == "echo:2+2", result.error
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 200, f"host memory grew {grown_mb:.0f} MB under a flood"


def test_a_flood_of_requests_is_cut_at_the_pending_bound() -> None:
    settings = SandboxSettings(timeout_s=10.0, max_llm_calls=10_000, max_pending_requests=8)

    class Stalled(ScriptedBatcher):
        async def agenerate(self, request):
            await asyncio.sleep(5)  # replies never come in time: requests pile up
            return await super().agenerate(request)

    started = time.monotonic()
    (result,) = _run([(HOSTILE["flood"], {"question": "q"})], settings, batcher=Stalled())
    assert result.status == "limit_exceeded" and result.error_kind == "pending_requests"
    assert time.monotonic() - started < 9


def test_tool_hogs_do_not_starve_other_executions() -> None:
    """Three executions call a slow tool from 16 threads each; three benign ones call it once
    and still finish within their timeout (asyncio's shared default pool let the hogs' calls
    queue ahead of them)."""

    def slow_tool(arguments: dict) -> str:
        time.sleep(1.0)
        return "tool done"

    hog = (
        "import threading\n"
        "from metaagentx.mas.protocol import current_runtime\n"
        "rt = current_runtime()\n"
        "def hammer():\n"
        "    for _ in range(8):\n"
        "        try:\n"
        "            rt.tool('hog', 'slow', {})\n"
        "        except Exception:\n"
        "            pass\n"
        "threads = [threading.Thread(target=hammer) for _ in range(16)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
    )
    benign = (
        "from metaagentx.mas.protocol import current_runtime\n"
        "from workflow import AgentNode\n"
        "current_runtime().tool('solver', 'slow', {})\n"
        "AgentNode('solver', 'Solve it.', max_turns=1).run(question)\n"
    )
    jobs = [(hog, {"question": "hog"})] * 3 + [(benign, {"question": "2+2"})] * 3
    results = _run(jobs, SandboxSettings(timeout_s=6.0, nproc=64), tools={"slow": slow_tool})
    for result in results[3:]:
        assert result.status == "ok" and result.final_output == "echo:2+2", result.error
