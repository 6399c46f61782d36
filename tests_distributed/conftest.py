"""The distributed lane (``.venv/bin/python -m pytest -q tests_distributed``): Ray sweeps and multi-process
training. Offline, like the main suite."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
