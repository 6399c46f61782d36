"""``mllmu-mini``: build the mini MLLMU-Bench in the hub layout.

    mllmu-mini build --out DIR [--profiles 40] [--celebrities 10] [--seed 0] [--image-size 64]

writes ``DIR/<config>/train-00000-of-00001.parquet`` for the ten
configurations. The copy shipped in the package is rebuilt with
``mllmu-mini build --out mllmu_tasks/mini/data`` (all defaults).
"""

from __future__ import annotations

import argparse
import sys

import datasets

from mllmu_tasks.mini.generator import SHARD_NAME, generate_benchmark, write_hub_layout


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mllmu-mini", description="Embedded mini MLLMU-Bench generator.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="generate the ten configurations and write them as parquet")
    build.add_argument("--out", required=True, help="output root; <out>/<config>/" + SHARD_NAME)
    build.add_argument("--profiles", type=int, default=40, help="fictitious profiles (default 40)")
    build.add_argument("--celebrities", type=int, default=10, help="celebrity stand-ins in Retain_Set (default 10)")
    build.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    build.add_argument("--image-size", type=int, default=64, help="portrait side in pixels (default 64)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 with a message for invalid sizes)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        benchmark = generate_benchmark(args.profiles, args.celebrities, args.seed, args.image_size)
    except ValueError as error:
        parser.error(str(error))
    datasets.disable_progress_bars()
    root = write_hub_layout(benchmark, args.out)
    total = 0
    for config, dataset in benchmark.items():
        size = (root / config / SHARD_NAME).stat().st_size
        total += size
        print(f"{config:12s} {len(dataset):4d} rows  {size / 1024:7.1f} KiB")
    print(f"wrote {root} ({total / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
