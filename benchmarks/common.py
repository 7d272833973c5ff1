"""Shared helpers for benchmarks: run a function in a fresh subprocess, report wall time and peak RSS."""
from __future__ import annotations

import json
import subprocess
import sys
import time


def measure(code: str) -> dict:
    """Run `code` in a fresh Python process; return wall seconds, peak RSS (MiB) and what it printed as JSON."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-2000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    out.setdefault("wall_s", wall)
    return out


# VmHWM of the child's own address space: ru_maxrss would also count the parent's pages it had before exec.
PEAK_RSS = ("import json; "
            "peak = max(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024; "
            "print(json.dumps({'peak_rss_mib': peak, **RESULT}))")


def child_code(body: str) -> str:
    """Wrap a snippet that sets RESULT (a dict) so it reports its own peak RSS."""
    return f"RESULT = {{}}\n{body}\n{PEAK_RSS}"




def dumps(obj) -> str:
    """A benchmark's summary as JSON (dates and paths as text)."""
    return json.dumps(obj, indent=2, default=str)
