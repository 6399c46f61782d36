"""Put a pipeline's report.md into the README's report block, as written (not retyped).

    python scripts/readme_report.py runs/pipeline/report.md [README.md]

Replaces everything between ``<details><summary>report</summary>`` and the
next ``</details>`` with the report: its title one level down (``###``) and
the plot line dropped (the README does not ship the image). Exits 1 when the
block is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

OPEN, CLOSE = "<details><summary>report</summary>", "</details>"


def main(argv: list[str]) -> int:
    report = Path(argv[0]).read_text(encoding="utf-8")
    readme = Path(argv[1] if len(argv) > 1 else "README.md")
    text = readme.read_text(encoding="utf-8")
    start = text.find(OPEN)
    end = text.find(CLOSE, start)
    if start < 0 or end < 0:
        print(f"{readme}: no {OPEN} ... {CLOSE} block", file=sys.stderr)
        return 1
    lines = [line for line in report.splitlines() if not line.startswith("![")]
    if lines and lines[0].startswith("# "):
        lines[0] = "### " + lines[0][2:]
    body = "\n".join(lines).strip()
    readme.write_text(text[:start + len(OPEN)] + "\n\n" + body + "\n\n" + text[end:], encoding="utf-8")
    print(f"{readme}: report block replaced ({len(lines)} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
