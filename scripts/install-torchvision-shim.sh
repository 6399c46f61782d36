#!/usr/bin/env bash
# Install scripts/torchvision_cpu_shim.py as a .pth start-up hook in the active venv, but only when
# torchvision cannot be imported without it (a CUDA-linked PyPI torchvision beside the CPU torch wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -f "$site/mllmu_vllm_shim.pth" "$site/mllmu_vllm_shim.py" "$site/mllmu_torchvision_shim.pth"
if ! python -c "import torchvision" 2>/dev/null; then
    cp scripts/torchvision_cpu_shim.py "$site/mllmu_torchvision_shim.py"
    echo "import mllmu_torchvision_shim" > "$site/mllmu_torchvision_shim.pth"
    python -c "import torchvision" # fails loudly if the shim is not enough
fi
