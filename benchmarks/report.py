"""Print the figures the runs left in ``benchmarks/results/`` as Markdown tables.

``python -m benchmarks.report`` reads ``latest.json`` (benchmarks) and every
``proof-*.json`` (the proof suites run with ``BVC_PROOF_RESULTS``); ``docs/proof.md``
quotes its output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.run import LABELS, RESULTS


def bench_tables(latest: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key in sorted(latest):
        report = latest[key]
        lines += [
            f"**{report['database']}, {report['mode']} mode**: {report['existing_bookings']:,} "
            f"existing bookings, broker {report['broker']}, Python {report['python']}, "
            f"Django {report['django']}, {report['cpus']} CPUs, finished "
            f"{report['finished_at']}.",
            "",
            "| measurement | p50 ms | p95 ms | target (p95) | samples | full GCs (longest) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, label in LABELS.items():
            found = report["results"].get(name)
            if found:
                target = report["targets_ms"].get(name)
                pauses = found.get("full_gc_pauses")
                gcs = f"{pauses} ({found['full_gc_max_ms']:g} ms)" if pauses else pauses
                lines.append(
                    f"| {label} | {found['p50_ms']} | {found['p95_ms']} | "
                    f"≤ {target:g} | {found['samples']} | {'' if gcs is None else gcs} |"
                )
        area = report["results"].get("members_area_500_bookings")
        if area:
            lines.append(
                f"| members area queries, 500 bookings / 50 bookings | "
                f"{area['queries']} | {area['queries_with_50_bookings']} | equal | | |"
            )
        lines.append("")
    return lines


def proof_tables(paths: list[Path]) -> list[str]:
    lines: list[str] = []
    for path in paths:
        report = json.loads(path.read_text())
        lines += [
            f"**{path.name}**: {report['database']}, BVC_PROOF_SIZE={report['size']}, "
            f"finished {report['finished_at']}.",
            "",
        ]
        for section, values in report["figures"].items():
            lines += [f"*{section}*", "", "| figure | value |", "|---|---|"]
            lines += [f"| {name} | {value} |" for name, value in values.items()]
            lines.append("")
    return lines


def main() -> int:
    latest_path = RESULTS / "latest.json"
    lines = ["## Benchmarks", ""]
    if latest_path.exists():
        lines += bench_tables(json.loads(latest_path.read_text()))
    lines += ["## Proof suites", ""]
    lines += proof_tables(sorted(RESULTS.glob("proof-*.json")))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
