#!/usr/bin/env bash
# The main job on the embedded default, offline, on a CPU:
# set up .venv, build the tiny VLM (demo size, random weights), and score the
# whole MLLMU suite on the embedded mini benchmark (forget ratio 10 %).
# Results JSON and per-question logs land in runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
[ -f runs/tiny-vlm/model.safetensors ] || mllmu-tiny-vlm --out runs/tiny-vlm --size demo
mllmu-eval --model mllmu-vlm --model_args pretrained=runs/tiny-vlm --device cpu \
    --tasks mllmu --metadata '{"source": "mini", "forget_ratio": 10}' \
    --batch_size 32 --output_path runs/quickstart --log_samples
