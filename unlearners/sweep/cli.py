"""``mllmu-sweep``: a grid of unlearning configurations, each unlearned, scored and audited as a Ray task.

    mllmu-sweep --config sweep.yaml
    mllmu-sweep --out_dir runs/sweep --set size=demo --axis method=ga,npo --axis unlearn_lr=1e-3,3e-3

A rerun of the same command resumes: finished trials are skipped, interrupted ones redone. See
:mod:`unlearners.sweep.spec` for the YAML file and :mod:`unlearners.sweep.runner` for what runs where.
"""

from __future__ import annotations

import argparse
import sys
import time

from .spec import SweepSpec, load_spec


def _pairs(entries: list[str], flag: str) -> dict[str, str]:
    out = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        if not key or not value:
            raise ValueError(f"{flag} {entry!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def build_spec(args: argparse.Namespace) -> SweepSpec:
    """The sweep from ``--config`` (if given) with the flags applied on top.

    Raises:
        ValueError: a bad ``--axis``/``--set`` entry or sweep file.
    """
    spec = load_spec(args.config) if args.config else SweepSpec()
    spec.pipeline.update(_pairs(args.set, "--set"))
    spec.grid.update({k: v.split(",") for k, v in _pairs(args.axis, "--axis").items()})
    for name in ("out_dir", "cpus_per_trial", "gpus_per_trial", "cpus_per_upstream", "forget_share"):
        if getattr(args, name) is not None:
            setattr(spec, name, getattr(args, name))
    return spec


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, check every trial (one line and exit 1 on bad input, before Ray starts), run the sweep
    and print its table."""
    parser = argparse.ArgumentParser(prog="mllmu-sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="sweep YAML file (sections out_dir, pipeline, grid, trials, resources, "
                                         "select)")
    parser.add_argument("--out_dir", help="where the sweep writes (default: the file's out_dir, or runs/sweep)")
    parser.add_argument("--axis", action="append", default=[], metavar="KEY=V1,V2",
                        help="a grid axis: a mllmu-pipeline flag (method, modality, unlearn_lr, seed, ...), "
                             "<method>.<setting> or train.<TrainingArguments field>; repeatable")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a mllmu-pipeline setting shared by every trial; repeatable")
    parser.add_argument("--cpus_per_trial", type=float, help="CPUs a trial reserves (default 1)")
    parser.add_argument("--gpus_per_trial", type=float, help="GPUs a trial reserves (default 0)")
    parser.add_argument("--cpus_per_upstream", type=float,
                        help="CPUs (and threads) the shared vanilla/retrained training reserves (default: cpus_per_trial)")
    parser.add_argument("--forget_share", type=float,
                        help="best configuration per method: the highest model utility among trials whose forget "
                             "score is at most this share of the vanilla model's (default 0.5)")
    parser.add_argument("--num_cpus", type=int, help="local Ray: CPUs to use (default: all; ignored with RAY_ADDRESS)")
    parser.add_argument("--retry_failed", action="store_true", help="run the trials recorded as failed again")
    args = parser.parse_args(argv)
    from .runner import run_sweep
    from .spec import expand

    try:
        spec = build_spec(args)
        expand(spec)
    except (ValueError, OSError) as err:
        sys.exit(f"mllmu-sweep: error: {err}")
    start = time.time()
    text = run_sweep(spec, retry_failed=args.retry_failed, num_cpus=args.num_cpus,
                     log=lambda line: print(f"mllmu-sweep {line}", flush=True))
    print(text)
    print(f"mllmu-sweep: finished in {time.time() - start:.0f} s; outputs in {spec.out_dir}")


if __name__ == "__main__":
    main()
