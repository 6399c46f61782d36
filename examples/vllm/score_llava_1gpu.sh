#!/usr/bin/env bash
# Score LLaVA-1.5-7B on the whole MLLMU-Bench with vLLM on one GPU (forget ratio 5 %).
# Install: pip install "mllmu-tasks[vllm]" (vllm from PyPI, CUDA). Data: the hub, or a local mirror
# (MLLMU_SOURCE=/path/to/mirror). Image+text tasks run on vllm-vlm, text-only tasks on vllm
# (lm-eval's vLLM backends take one modality per run); both with the model's chat template.
set -euo pipefail
MODEL=${MODEL:-llava-hf/llava-1.5-7b-hf}
OUT=${OUT:-results/llava-1.5-7b-vllm}
META='{"forget_ratio": 5}'
mllmu-eval --model vllm-vlm \
    --model_args "pretrained=$MODEL,max_images=1,dtype=bfloat16,gpu_memory_utilization=0.9,max_model_len=4096" \
    --tasks mllmu-img --apply_chat_template --batch_size auto --metadata "$META" \
    --output_path "$OUT/img" --log_samples
mllmu-eval --model vllm \
    --model_args "pretrained=$MODEL,dtype=bfloat16,gpu_memory_utilization=0.9,max_model_len=4096" \
    --tasks mllmu-txt --apply_chat_template --batch_size auto --metadata "$META" \
    --output_path "$OUT/txt" --log_samples
mllmu-report "$OUT/img" "$OUT/txt" --names img,txt --out "$OUT/report"
