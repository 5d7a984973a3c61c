"""Markdown rendering cost: each case of the pathological corpus (tests/evidence/
markdown_corpus.py), at the field limit, through apps.evidence.markdown.markdown_render
(cmark-gfm, the nesting and table guards, nh3), in milliseconds; then the maximum.

    python benchmarks/markdown.py [--length N] [--repeat 5] [--peers]

Target: the worst case under 100 ms at the limit (MARKDOWN_MAX_LENGTH). Each case is
rendered `--repeat` times; the median wall time, the slowest run and the median CPU time
of this process are printed. The target is judged on both medians: on a shared machine
the wall time also counts the time other processes held the core, the CPU time does not.
`--peers` times the same inputs, unguarded and without nh3, through Python-Markdown (the
renderer this replaced; each case in a child process with a 10 s timeout) and markdown-it-py
(if installed), for comparison. Prints the numbers and judges only the target (PASS/MISS);
the exit code is 0 whenever every measurement ran. Numbers move with whatever else the
machine runs; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0
PEER_TIMEOUT_S = 10


def _time(render, text: str, repeat: int) -> tuple[float, float, float]:
    """(median wall ms, slowest wall ms, median CPU ms) of `repeat` renders."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        render(text)
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    return statistics.median(walls), max(walls), statistics.median(cpus)


def _python_markdown(name: str, length: int) -> str:
    """Python-Markdown on one case, in a child: it may take seconds or overflow the stack."""
    code = (
        "import sys, time, markdown\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.evidence.markdown_corpus import pathological_corpus\n"
        f"text = pathological_corpus({length})[{name!r}]\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    markdown.markdown(text, extensions=['extra', 'sane_lists'])\n"
        "except RecursionError:\n"
        "    print('RecursionError'); raise SystemExit\n"
        "print(f'{(time.perf_counter() - t) * 1000:.1f}')\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=PEER_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return f">{PEER_TIMEOUT_S * 1000}"
    return (out.stdout.strip() or out.stderr.strip().splitlines()[-1])[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=0, help="default: MARKDOWN_MAX_LENGTH")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--peers", action="store_true")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ladder_tracker.settings.base")
    from apps.evidence.markdown import MARKDOWN_MAX_LENGTH, markdown_render
    from tests.evidence.markdown_corpus import pathological_corpus

    length = args.length or MARKDOWN_MAX_LENGTH
    corpus = pathological_corpus(length)
    markdown_it = None
    if args.peers:
        try:
            from markdown_it import MarkdownIt

            markdown_it = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render
        except ImportError:
            print("markdown-it-py is not installed: its column is left out")

    print(
        f"Markdown rendering, {len(corpus)} cases of {length:,} characters, "
        f"median of {args.repeat} (ms), load {os.getloadavg()[0]:.2f}"
    )
    header = f"{'case':28} {'chars':>7} {'median':>8} {'slowest':>8} {'cpu':>8}"
    if args.peers:
        header += f" {'Python-Markdown':>16} {'markdown-it-py':>15}"
    print(header)
    worst_name, worst, worst_cpu_name, worst_cpu = "", 0.0, "", 0.0
    for name, text in corpus.items():
        median, slowest, cpu = _time(markdown_render, text, args.repeat)
        line = f"{name:28} {len(text):7,} {median:8.2f} {slowest:8.2f} {cpu:8.2f}"
        if args.peers:
            line += f" {_python_markdown(name, length):>16}"
            if markdown_it is not None:
                line += f" {_time(markdown_it, text, 1)[2]:15.1f}"
        print(line, flush=True)
        if median > worst:
            worst_name, worst = name, median
        if cpu > worst_cpu:
            worst_cpu_name, worst_cpu = name, cpu
    for label, value, case in (("wall", worst, worst_name), ("cpu", worst_cpu, worst_cpu_name)):
        verdict = "PASS" if value < TARGET_MS else "MISS"
        print(f"max {label}: {value:.2f} ms ({case}); target < {TARGET_MS:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
