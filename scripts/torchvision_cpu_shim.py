"""Defines torchvision::nms/qnms schemas when torchvision's CUDA-linked C extension cannot load (CPU torch).

PyPI's torchvision wheels beside the CPU torch wheel are CUDA-linked: their C extension does not load, and
torchvision's meta registrations then fail at import with "operator torchvision::nms does not exist". The
processors this project uses (Qwen2-VL, Qwen2.5-VL, InternVL, Mistral3 in transformers 5.24, vLLM's image
path) need only torchvision's pure-Python transforms, so the two schemas (no kernels) are enough.
Installed by scripts/setup.sh and scripts/setup-vllm.sh as a .pth start-up hook, only where torchvision
cannot import otherwise; a GPU machine with a working torchvision never loads it.
"""
import torch

try:
    _lib = torch.library.Library("torchvision", "DEF")
    _lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
except RuntimeError:  # already defined (the real extension loaded)
    pass
