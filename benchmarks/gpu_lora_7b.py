"""GPU benchmark: LoRA unlearning steps of a 7B-shaped, randomly initialised LLaVA (no download).

    python benchmarks/gpu_lora_7b.py [--steps 10] [--batch_size 4] [--text_tokens 128] [--peak_tflops 989]
    python benchmarks/gpu_lora_7b.py --tiny      # the same code on a tiny shape, on CPU (smoke check)

Shape of llava-1.5-7b: Llama-2-7B text model (hidden 4096, 32 layers, 32 heads, FFN 11008, vocab 32064)
and a CLIP ViT-L/14 at 336 px (hidden 1024, 24 layers, 16 heads) -> 576 image tokens per image. bf16
weights, LoRA r 16 / alpha 16 on every language-model linear layer (the released MLLMU settings), GA loss
on answer tokens, AdamW, gradient checkpointing. Needs only PyTorch, transformers and peft.
Prints step time, tokens/s and MFU = 6 * N_params * tokens / (step time * peak FLOP/s) (Chowdhery et al.
2022, PaLM, App. B; N counts every parameter, frozen or not; --peak_tflops: dense bf16 of the GPU,
989 for H100/H200 SXM). Asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import torch


def config(tiny: bool):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    if tiny:
        text = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                           intermediate_size=128, vocab_size=512)
        vision = CLIPVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=1, intermediate_size=64,
                                  image_size=32, patch_size=8)
    else:
        text = LlamaConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                           intermediate_size=11008, vocab_size=32064, max_position_embeddings=4096)
        vision = CLIPVisionConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                  intermediate_size=4096, image_size=336, patch_size=14, projection_dim=768)
    return LlavaConfig(text_config=text, vision_config=vision, image_token_index=32000 if not tiny else 4,
                       vision_feature_layer=-2, vision_feature_select_strategy="default")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--text_tokens", type=int, default=128)
    parser.add_argument("--peak_tflops", type=float, default=989.0)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    from peft import LoraConfig, get_peft_model
    from transformers import LlavaForConditionalGeneration

    from unlearners.methods.losses import batch_nll
    from unlearners.model import language_model_linear_names

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    cfg = config(args.tiny)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration(cfg).to(dtype)
    n_params = sum(p.numel() for p in model.parameters())
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=language_model_linear_names(model)))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model.train()
    vision = cfg.vision_config
    n_image = (vision.image_size // vision.patch_size) ** 2
    seq = n_image + args.text_tokens
    ids = torch.randint(5, cfg.text_config.vocab_size - 100, (args.batch_size, seq), device=device)
    ids[:, :n_image] = cfg.image_token_index
    labels = ids.clone()
    labels[:, : seq - args.text_tokens // 4] = -100  # the answer: the last quarter of the text
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels,
             "pixel_values": torch.randn(args.batch_size, 3, vision.image_size, vision.image_size, device=device,
                                         dtype=dtype)}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for step in range(args.steps + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = -batch_nll(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            times.append(time.perf_counter() - start)
    step_s = sum(times) / len(times)
    tokens = args.batch_size * seq
    mfu = 6 * n_params * tokens / step_s / (args.peak_tflops * 1e12)
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device == "cuda" else float("nan")
    print("| device | params | batch x seq | step s | tokens/s | MFU % | peak GiB |\n|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'} | {n_params / 1e9:.2f} B | "
          f"{args.batch_size} x {seq} | {step_s:.3f} | {tokens / step_s:.0f} | {100 * mfu:.1f} | {peak:.1f} |")


if __name__ == "__main__":
    main()
