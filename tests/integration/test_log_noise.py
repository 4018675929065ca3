"""Third-party noise stays out of Quorum's output: matplotlib's font cache message, Python warnings, library log
records below their threshold; and on a real terminal (a pty) the lines are the console renderer's, not JSON."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")
NOISY_PROGRAM = """
import logging, warnings
import structlog
from entrypoints.logging_setup import configure_logging
configure_logging("INFO", {fmt!r})
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig = plt.figure()
plt.plot([1, 2, 3])
fig.savefig({png!r})
warnings.warn("this API will change", FutureWarning)
logging.getLogger("sentence_transformers").warning("No sentence-transformers model found")
logging.getLogger("LiteLLM").warning("Give Feedback / Get Help")
structlog.get_logger("test").info("report_written", cycle_id="c-1")
"""


def run_noisy(tmp_path: Path, fmt: str, *, stderr: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "PYTHONPATH": str(ROOT)}  # a fresh font cache
    env.pop("QUORUM_LOG_FORMAT", None)
    program = NOISY_PROGRAM.format(fmt=fmt, png=str(tmp_path / "chart.png"))
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, text=True, timeout=120,
                          stdout=subprocess.PIPE, stderr=stderr if stderr is not None else subprocess.PIPE)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_only_quorums_own_line_is_written(tmp_path: Path, fmt: str) -> None:
    proc = run_noisy(tmp_path, fmt)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mpl").is_dir(), "matplotlib did not build its font cache here: the test proves nothing"
    assert "fontManager" not in proc.stderr and "font cache" not in proc.stderr
    assert "FutureWarning" not in proc.stderr and "this API will change" not in proc.stderr
    assert "No sentence-transformers model" not in proc.stderr and "Give Feedback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert "report_written" in line and "c-1" in line
    assert line.startswith("{") == (fmt == "json")


def test_a_real_terminal_gets_console_lines_and_a_pipe_gets_json(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        proc = run_noisy(tmp_path, "auto", stderr=terminal)
        os.close(terminal)
        terminal = -1
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal side is closed: everything has been read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert proc.returncode == 0
    shown = ANSI.sub("", b"".join(chunks).decode())
    [line] = [line for line in shown.splitlines() if line.strip()]
    assert "report_written" in line and "cycle_id=c-1" in line and not line.lstrip().startswith("{")
    piped = run_noisy(tmp_path, "auto")
    assert piped.stderr.startswith("{") and '"event": "report_written"' in piped.stderr
