"""MLLMU-Bench as an lm-evaluation-harness task suite.

``TASKS_DIR`` is the folder to give lm-eval (``--include_path``);
``MINI_DATA_DIR`` holds the embedded mini benchmark in the hub layout.
"""

from pathlib import Path

__version__ = "0.1.0"

TASKS_DIR = str(Path(__file__).parent / "tasks")
MINI_DATA_DIR = str(Path(__file__).parent / "mini" / "data")
