"""Draw the booking latency against the number of existing bookings.

``python -m benchmarks.plot`` reads ``benchmarks/results/latest.json`` and draws, for
each database, the booking request and the free slots of the service with 20 staff
(p50 and p95) at each number of existing bookings a run measured them at. It prefers
full runs and falls back on quick ones. The picture goes to
``docs/screenshots/bench-latency.png`` (``docs/proof.md`` shows it), or to ``--output``.

Needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.run import RESULTS, ROOT

OUTPUT = ROOT / "docs" / "screenshots" / "bench-latency.png"

LINES = (
    ("booking_request", "booking request"),
    ("free_slots_20_staff", "free slots, 20 staff, 30 days"),
)


def runs_to_draw(latest: dict[str, Any]) -> list[dict[str, Any]]:
    """One run per database that measured latency at several sizes: full before quick."""
    chosen: dict[str, dict[str, Any]] = {}
    for mode in ("quick", "full"):
        for report in latest.values():
            if report["mode"] == mode and len(report.get("scaling", ())) > 1:
                chosen[report["database"]] = report
    return [chosen[name] for name in sorted(chosen)]


def draw(runs: list[dict[str, Any]], output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(
        1, len(LINES), figsize=(11, 4.2), layout="constrained", sharex=True
    )
    for axis, (key, title) in zip(axes, LINES, strict=True):
        for run, colour in zip(runs, ("tab:blue", "tab:orange", "tab:green"), strict=False):
            sizes = [point["existing_bookings"] for point in run["scaling"]]
            for percentile, style in (("p50", "-o"), ("p95", "--^")):
                axis.plot(
                    sizes,
                    [point[f"{key}_{percentile}_ms"] for point in run["scaling"]],
                    style,
                    color=colour,
                    label=f"{run['database']} {percentile}",
                )
        axis.set_title(title)
        axis.set_xlabel("existing bookings")
        axis.set_ylabel("milliseconds")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend()
    stamp = max(run["finished_at"] for run in runs)[:10]
    figure.suptitle(f"Latency against the number of existing bookings ({stamp})")
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    pyplot.close(figure)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    latest_path = RESULTS / "latest.json"
    runs = runs_to_draw(json.loads(latest_path.read_text())) if latest_path.exists() else []
    if not runs:
        print("No run in benchmarks/results/latest.json measured latency at several sizes.")  # noqa: T201
        return 1
    path = draw(runs, args.output)
    print(f"plot written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
