#!/usr/bin/env bash
# Set up .venv with everything the project needs, from the project's own files.
#   bash scripts/setup.sh            # the package
#   bash scripts/setup.sh test       # the package and its test extra
# torch goes in FIRST and pinned: a bare `torch` requirement would pull a
# multi-GB CUDA build. On a GPU machine, install the torch build you want
# before running this script (a torch that satisfies pyproject's range is kept),
# or set TORCH_SPEC (e.g. TORCH_SPEC="torch==2.13.0").
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -c "import torch" 2>/dev/null || pip install -q "${TORCH_SPEC:-torch==2.13.0}"
pip install -q -c constraints.txt -e ".${extras:+[$extras]}"
# torchvision (Qwen2-VL, Qwen2.5-VL, InternVL and Mistral3 processors need it): PyPI's wheel beside the
# CPU torch wheel is CUDA-linked and needs a two-line operator shim to import (a GPU machine needs none).
bash scripts/install-torchvision-shim.sh
python -c "import mllmu_tasks, lm_eval, transformers, torch, torchvision; print('mllmu-tasks', mllmu_tasks.__version__, '| lm-eval', lm_eval.__version__, '| transformers', transformers.__version__, '| torch', torch.__version__, '| torchvision', torchvision.__version__)"
