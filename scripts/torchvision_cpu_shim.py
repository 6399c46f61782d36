"""Defines torchvision::nms/qnms schemas when torchvision's CUDA-linked C extension cannot load (CPU torch).

PyPI's torchvision wheels beside the CPU torch wheel are CUDA-linked: their C extension does not load, and
torchvision's meta registrations then fail at import with "operator torchvision::nms does not exist". The
processors this project uses (Qwen2-VL, Qwen2.5-VL, InternVL, Mistral3 in transformers 5.24, vLLM's image
path) need only torchvision's pure-Python transforms, so the two schemas (no kernels) are enough.

Installed by scripts/install-torchvision-shim.sh as a .pth start-up hook, only where torchvision cannot
import otherwise (a GPU machine with a working torchvision never loads it). The hook costs nothing at
start-up: it defines the schemas only when something first imports torchvision (a meta-path finder that
then steps aside), so a Python process that never touches torchvision never imports torch for it.
"""
import sys


def define_schemas() -> None:
    import torch

    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        define_schemas.library = lib  # keep the registration alive
    except RuntimeError:  # already defined (the real extension loaded)
        pass


class _BeforeTorchvision:
    """Meta-path finder: on the first ``import torchvision``, define the schemas, then defer to the real finders."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(cls)
            define_schemas()
        return None


if "torchvision" in sys.modules:
    define_schemas()
else:
    sys.meta_path.insert(0, _BeforeTorchvision)
