"""Unlearning baselines for MLLMU-Bench: vanilla fine-tuning, GA, GradDiff, KL_Min, NPO.

Produces ordinary Hugging Face checkpoints (merged weights as safetensors,
processor, generation config, model card) that the ``mllmu_tasks`` suite
scores with no extra step. Entry points: :func:`unlearners.api.run` and the
``mllmu-unlearn`` command.
"""

__version__ = "0.1.0"
