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
        week = report["results"].get("admin_calendar_week")
        if week:
            lines.append(
                f"| admin calendar: bookings in the busiest week / queries | "
                f"{week['bookings_in_the_week']} | {week['queries']} | | | |"
            )
        lines.append("")
        lines += extra_tables(report)
    return lines


def extra_tables(report: dict[str, Any]) -> list[str]:
    """Throughput, latency against the number of bookings, and the peer, when measured."""
    lines: list[str] = []
    throughput = report["results"].get("throughput")
    if throughput:
        lines += [
            f"Bookings per second through gunicorn, {throughput['members']} members at once: "
            f"**{throughput['bookings_per_second']}** ({throughput['bookings']} bookings in "
            f"{throughput['seconds']} s; *Book* p50 {throughput['p50_ms']:.0f} ms, "
            f"p95 {throughput['p95_ms']:.0f} ms).",
            "",
        ]
    if report.get("scaling"):
        lines += [
            "| existing bookings | booking p50 / p95 ms | free slots (20 staff) p50 / p95 ms |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {point['existing_bookings']:,} | {point['booking_request_p50_ms']} / "
            f"{point['booking_request_p95_ms']} | {point['free_slots_20_staff_p50_ms']} / "
            f"{point['free_slots_20_staff_p95_ms']} |"
            for point in report["scaling"]
        ]
        lines.append("")
    peer = report["results"].get("django_appointment")
    if peer:
        lines += [
            f"Beside {peer['peer']} {peer['peer_version']} "
            f"({peer['existing_appointments']:,} existing bookings in both):",
            "",
            "| measurement | ours p50 / p95 ms | theirs p50 / p95 ms | theirs / ours |",
            "|---|---:|---:|---:|",
        ]
        for label, key in (
            ("free slots, 1 staff member, 30 days", "free_slots_one_staff_30_days"),
            ("booking request (ours 1 POST, theirs 2)", "booking_request"),
        ):
            found = peer[key]
            lines.append(
                f"| {label} | {found['ours']['p50_ms']} / {found['ours']['p95_ms']} | "
                f"{found['theirs']['p50_ms']} / {found['theirs']['p95_ms']} | "
                f"{found['ratio']:g}× |"
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
