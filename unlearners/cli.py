"""``mllmu-unlearn``: fine-tune (vanilla model) or unlearn, writing a Hugging Face checkpoint.

``--method`` picks the method; its config dataclass adds its own flags
(``--beta`` for NPO, ``--kl_weight`` for KL_Min, ...). Every
``transformers.TrainingArguments`` flag works. ``mllmu-unlearn --method npo -h``
lists them all.

Examples::

    # vanilla model: fine-tune a base VLM on all profiles of the mini benchmark
    mllmu-unlearn --method finetune --model runs/tiny-vlm --source mini --output_dir runs/vanilla \\
        --num_train_epochs 5 --learning_rate 2e-3 --use_cpu
    # NPO at forget ratio 10 %, text-only (unimodal) unlearning
    mllmu-unlearn --method npo --beta 0.4 --model runs/vanilla --source mini --forget_ratio 10 \\
        --modality text-only --output_dir runs/npo-txt --use_cpu
"""

from __future__ import annotations

import argparse
import sys

from transformers import HfArgumentParser

from mllmu_tasks.schema import SchemaError

from .config import DataArguments, ModelArguments, UnlearnTrainingArguments
from .methods import METHODS, get_method
from .trainer import NonFiniteLossError

#: Errors that are about the user's input: printed as one line, no traceback.
USER_ERRORS = (SchemaError, FileExistsError, FileNotFoundError, NonFiniteLossError, ValueError)


def parse(argv: list[str]):
    """``(method name, model args, data args, training args, method config, dtype)`` from the command line.

    Raises:
        SystemExit: bad flags (argparse prints the usage).
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--method", choices=sorted(METHODS), required="-h" not in argv and "--help" not in argv)
    pre.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    known, rest = pre.parse_known_args(argv)
    method_cls = get_method(known.method or "finetune")
    parser = HfArgumentParser((ModelArguments, DataArguments, UnlearnTrainingArguments, method_cls.config_class),
                              prog="mllmu-unlearn", parents=[pre], description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    margs, data, targs, method_config = parser.parse_args_into_dataclasses(argv)[:4]  # then --method/--dtype
    return known.method, margs, data, targs, method_config, known.dtype


def main(argv: list[str] | None = None) -> None:
    """Run :func:`unlearners.api.run` from the command line and print the checkpoint's path."""
    from .api import run

    method, margs, data, targs, method_config, dtype = parse(list(sys.argv[1:] if argv is None else argv))
    try:
        out = run(method, margs, data, targs, method_config, dtype=dtype)
    except USER_ERRORS as err:
        print(f"mllmu-unlearn: error: {err}", file=sys.stderr)
        sys.exit(2)
    if targs.process_index == 0:
        print(f"mllmu-unlearn: wrote {out}")


if __name__ == "__main__":
    main()
