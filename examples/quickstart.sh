#!/usr/bin/env bash
# The main job on the embedded default, offline, on a CPU (about 12.5 minutes on 2 cores, setup included):
# set up .venv, then mllmu-pipeline: build the tiny VLM, pre-train it on the celebrity
# stand-ins, fine-tune the vanilla model on the fictitious profiles (4 held out) and a retrained
# model on the retain profiles, unlearn with GA, GradDiff, KL_Min and NPO (image+text and
# text-only) at forget ratio 10 %, score every checkpoint with the MLLMU suite, audit privacy
# (membership inference, forget quality, relearning), and print the report (runs/pipeline/report.md).
# Extra flags go to mllmu-pipeline (e.g. --methods npo --forget_ratio 5). Rerunning
# resumes: finished stages whose inputs did not change are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mllmu-pipeline --out_dir runs/pipeline "$@"
