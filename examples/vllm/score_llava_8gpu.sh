#!/usr/bin/env bash
# Score LLaVA-1.5-7B on the whole MLLMU-Bench with vLLM on 8 GPUs of one machine.
# A 7B model fits one GPU, so the 8 GPUs serve 8 data-parallel replicas (lm-eval starts them with Ray:
# pip install ray); for a model that needs several GPUs, set TP (tensor parallel) and DP so that
# TP * DP = 8, e.g. TP=2 DP=4.
set -euo pipefail
MODEL=${MODEL:-llava-hf/llava-1.5-7b-hf}
OUT=${OUT:-results/llava-1.5-7b-vllm-8gpu}
TP=${TP:-1}
DP=${DP:-8}
META='{"forget_ratio": 5}'
COMMON="pretrained=$MODEL,dtype=bfloat16,tensor_parallel_size=$TP,data_parallel_size=$DP,gpu_memory_utilization=0.9,max_model_len=4096"
mllmu-eval --model vllm-vlm --model_args "$COMMON,max_images=1" --tasks mllmu-img --apply_chat_template \
    --batch_size auto --metadata "$META" --output_path "$OUT/img" --log_samples
mllmu-eval --model vllm --model_args "$COMMON" --tasks mllmu-txt --apply_chat_template \
    --batch_size auto --metadata "$META" --output_path "$OUT/txt" --log_samples
mllmu-report "$OUT/img" "$OUT/txt" --names img,txt --out "$OUT/report"
