"""``mllmu-audit``: the privacy audit of checkpoints against a retrained model.

Scores every checkpoint (and the retrained one) on the forget profiles'
``ft_Data`` pairs against the holdout profiles' (membership-inference AUC of
LOSS, zlib, Min-K% and Min-K%++, PrivLeak) and on the forget set's
multiple-choice questions (truth ratios, forget quality), image+text and
text-only; writes ``<out>/<checkpoint folder>.json`` per checkpoint and
``<out>/privacy.md``, and prints the table.

The holdout profiles must be people none of the models was trained on;
``mllmu-pipeline`` draws them (``--holdout_profiles``) and records them in
``<run>/data/holdout-mirror/holdout.json``, which ``--holdout`` also accepts.

Example (after ``mllmu-pipeline --out_dir runs/pipeline``)::

    mllmu-audit --checkpoints runs/pipeline/vanilla,runs/pipeline/unlearn/npo-image+text \\
        --retrained runs/pipeline/retrained --holdout runs/pipeline/data/holdout-mirror/holdout.json \\
        --source mini --forget_ratio 10 --out runs/audit
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mllmu_tasks.schema import SchemaError

from ..checkpoint import write_json_atomic
from .run import audit_checkpoint, audit_data, compare, privacy_markdown


def holdout_ids(value: str) -> list[str]:
    """``--holdout``: comma-separated IDs, or a ``holdout.json`` written by the pipeline.

    Raises:
        ValueError: a JSON file without a ``holdout`` list.
    """
    if value.endswith(".json"):
        ids = json.loads(Path(value).read_text()).get("holdout")
        if not isinstance(ids, list):
            raise ValueError(f"{value}: no 'holdout' list of profile IDs")
        return [str(i) for i in ids]
    return [i.strip() for i in value.split(",") if i.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mllmu-audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", required=True, help="comma-separated checkpoint folders to audit")
    parser.add_argument("--retrained", required=True, help="the retrained model (fine-tuned on retain profiles only)")
    parser.add_argument("--holdout", required=True, help="holdout profile IDs (comma-separated) or a holdout.json")
    parser.add_argument("--source", default="mini", help="the benchmark data (mini, hub, or a local hub-layout copy)")
    parser.add_argument("--splits", default=None, help="JSON splits file (needed with a JSON Lines --source)")
    parser.add_argument("--forget_ratio", type=int, default=10, help="forget ratio (%%)")
    parser.add_argument("--out", default="mllmu-audit", help="output folder")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the audit; bad input (missing folder, unknown holdout ID, bad data) is one line and exit 1."""
    args = _parser().parse_args(argv)
    from mllmu_tasks.backend import MLLMUVisionLM

    try:
        checkpoints = [Path(c) for c in args.checkpoints.split(",") if c]
        missing = [str(c) for c in [*checkpoints, Path(args.retrained)] if not (c / "config.json").is_file()]
        if missing:
            raise FileNotFoundError(f"not a checkpoint folder (no config.json): {', '.join(missing)}")
        data = audit_data(args.source, args.forget_ratio, holdout_ids(args.holdout), args.splits)  # before any load
    except (FileNotFoundError, ValueError, SchemaError) as err:
        sys.exit(f"mllmu-audit: error: {err}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    retrained = audit_checkpoint(MLLMUVisionLM(pretrained=args.retrained, device=args.device), data)
    compared = {"retrained": compare(retrained, retrained)}
    for checkpoint in checkpoints:
        audit = audit_checkpoint(MLLMUVisionLM(pretrained=str(checkpoint), device=args.device), data)
        compared[checkpoint.name] = compare(audit, retrained)
        write_json_atomic(out / f"{checkpoint.name}.json", {**audit, "against_retrained": compared[checkpoint.name]})
    write_json_atomic(out / "retrained.json", retrained)
    table = privacy_markdown(compared)
    (out / "privacy.md").write_text(table + "\n", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
