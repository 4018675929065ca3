"""The CI regression gate end to end: `quorum evals gate` on the committed evals/baseline.json against a fresh offline
run (passes) and against an injected regression (exit 1), a run it cannot compare (exit 2); and the workflows: CI
runs `make evals-gate`, the deploy waits for the test workflow to succeed on main."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "evals" / "baseline.json"
pytestmark = [pytest.mark.integration]


def quorum(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh offline run of every dataset suite on the committed datasets."""
    out = tmp_path_factory.mktemp("evals") / "offline.json"
    proc = quorum("evals", "run", "--llm", "offline", "--json", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def baseline() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(BASELINE.read_text())
    return doc


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(doc))
    return path


def test_the_committed_baseline_is_an_offline_run_of_the_committed_datasets() -> None:
    doc = baseline()
    manifest = json.loads((ROOT / "evals" / "datasets" / "manifest.json").read_text())
    assert doc["schema"] == 1 and doc["llm"] == "offline"
    assert doc["datasets"] == {n: d["version"] for n, d in manifest["datasets"].items()}
    assert {"signal", "traps", "risk", "validator"} <= set(doc["suites"])
    assert all(len(s["scores"]) == manifest["datasets"][n]["rows"] for n, s in doc["suites"].items())


def test_a_fresh_offline_run_passes_the_gate(fresh: Path) -> None:
    proc = quorum("evals", "gate", "--baseline", BASELINE, "--candidate", fresh, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "ok" and report["exit_code"] == 0
    assert {s["status"] for s in report["suites"].values()} == {"ok"}      # the offline policy is deterministic
    assert all(s["relative_drop"] == 0 for s in report["suites"].values())


def test_an_injected_regression_fails_the_gate_with_exit_1(tmp_path: Path) -> None:
    doc = baseline()
    rng = np.random.default_rng(0)
    signal = doc["suites"]["signal"]["scores"]
    flipped = {k: 0.0 if v == 1.0 and rng.random() < 0.3 else v for k, v in signal.items()}
    assert sum(signal.values()) - sum(flipped.values()) > 0.2 * sum(signal.values())
    doc["suites"]["signal"]["scores"] = flipped
    proc = quorum("evals", "gate", "--baseline", BASELINE, "--candidate", write(tmp_path, doc))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gate: REGRESSION" in proc.stdout and "signal: regression" in proc.stdout
    assert "risk: ok" in proc.stdout and "REGRESSION in signal" in proc.stderr


def test_runs_on_different_rows_are_refused_with_exit_2(tmp_path: Path) -> None:
    doc = baseline()
    doc["suites"]["traps"]["scores"] = {f"other-{k}": v for k, v in doc["suites"]["traps"]["scores"].items()}
    proc = quorum("evals", "gate", "--baseline", BASELINE, "--candidate", write(tmp_path, doc))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "traps: refused" in proc.stdout and "only 0 rows in common" in proc.stdout


def test_a_file_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1, "suites": {"signal": {"scores": [1, 0]}}}')
    proc = quorum("evals", "gate", "--baseline", BASELINE, "--candidate", bad)
    assert proc.returncode == 2 and "is not an eval run document: suites.signal.scores" in proc.stderr


def workflow(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as true
    return doc


def test_ci_runs_the_evals_gate_and_the_deploy_waits_for_it_on_main() -> None:
    test = workflow("test.yml")
    steps = [s.get("run", "") for s in test["jobs"]["test"]["steps"]]
    assert "make evals-gate" in steps and "make check" in steps and "make test" in steps
    assert {"pull_request", "workflow_call"} <= set(test["on"])
    deploy = workflow("deploy.yml")
    assert set(deploy["on"]) == {"push", "workflow_dispatch"} and deploy["on"]["push"]["branches"] == ["main"]
    assert deploy["jobs"]["tests"]["uses"] == "./.github/workflows/test.yml"     # the deploy runs the tests itself
    assert deploy["jobs"]["build-and-push"]["needs"] == "tests"
    assert {"tests", "build-and-push"} <= set(deploy["jobs"]["deploy"]["needs"])
    assert deploy["env"]["DEPLOY_SHA"] == "${{ github.sha }}"
    checkouts = [s for job in deploy["jobs"].values() for s in job.get("steps", []) if s.get("uses", "").startswith(
        "actions/checkout")]
    assert checkouts and all(s["with"]["ref"] == "${{ env.DEPLOY_SHA }}" for s in checkouts)
    makefile = (ROOT / "Makefile").read_text()
    assert "evals-gate:" in makefile and "--baseline evals/baseline.json" in makefile
