#!/usr/bin/env bash
# The model-touching tests on the oldest transformers pyproject admits (4.56), in a venv of its
# own beside the main environment's packages (torch included, which must not change), with
# FutureWarning and DeprecationWarning as errors: a deprecated transformers API that our code
# still uses fails here, before the release that removes it breaks the newest version.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${TF_OLD_VENV:-$(mktemp -d)/venv-tf-old}"
torch_before=$("$PYTHON" -c 'import torch; print(torch.__version__)')
"$PYTHON" -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install -q "transformers==4.56.*" "tokenizers<0.23"
"$VENV/bin/pip" install -q --no-deps -e .
torch_after=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
if [ "$torch_before" != "$torch_after" ]; then
    echo "installing transformers 4.56 changed torch: $torch_before -> $torch_after" >&2
    exit 1
fi
installed=$SECONDS
"$VENV/bin/python" -W error::FutureWarning -W error::DeprecationWarning -m pytest -q \
    -p no:cacheprovider \
    tests/test_hf_generator.py tests/test_batcher.py tests/test_sampling.py tests/test_tiny.py \
    tests/test_llm_loading.py tests/test_train_policy.py tests/test_train_logprobs.py
version=$("$VENV/bin/python" -c 'import transformers; print(transformers.__version__)')
echo "transformers $version (torch $torch_after): venv installed in ${installed} s;" \
    "tests ran in $((SECONDS - installed)) s"
