"""Names of the suite's lm-eval backend, registered without importing it.

:mod:`mllmu_tasks.backend` imports torch, transformers and lm-eval's VLM
backend (about 3.6 s on 2 CPU cores); registering a placeholder here keeps
that import until a run asks for the backend by name.
"""

from __future__ import annotations

BACKEND_NAME = "mllmu-vlm"
#: Every name the backend answers to (also declared in pyproject.toml's ``lm_eval.models`` entry points).
BACKEND_NAMES = (BACKEND_NAME, "hf-multimodal-ll")
BACKEND_TARGET = "mllmu_tasks.backend:MLLMUVisionLM"


def register() -> None:
    """Register :data:`BACKEND_NAMES` in lm-eval's model registry as lazy placeholders (no torch import)."""
    import lm_eval.models  # noqa: F401  (fills the registry with the built-in names first)
    from lm_eval.api.registry import model_registry

    for name in BACKEND_NAMES:
        if name not in model_registry:
            model_registry.register(name, target=BACKEND_TARGET)
