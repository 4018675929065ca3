import os, subprocess, sys
from pathlib import Path

def test_tmp(pg_url: str, tmp_path: Path) -> None:
    report = tmp_path / "report"
    env = {**os.environ, "DATABASE_URL": pg_url, "QUORUM_DATA_DIR": str(tmp_path / "q")}
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "backtest", "--start", "2024-01-02", "--end", "2024-02-29",
         "--symbols", "25", "--seed", "3", "--report", str(report), "--discovery", "on"],
        capture_output=True, text=True, env=env, timeout=900)
    print(proc.stdout[-4000:]); print(proc.stderr[-1500:])
    html = (report / "report.html").read_text()
    print(html[html.find("<h2>Picker"):][:600])
    assert proc.returncode == 0
