"""The deploy path: .github/workflows/deploy.yml waits for the tests and the evals gate and trusts only a known SSH
host key; deploy/deploy.sh refuses to restart anything during the NYSE session unless forced (run here against a
stub `docker` that records what the script asks of it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True)       # YAML 1.1 reads the key `on` as true
    return dict(doc)


def needs(job: dict[str, Any]) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def upstream(jobs: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(needs(jobs[name]))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(needs(jobs[n]))
    return seen


def test_every_deploy_job_waits_for_the_tests_and_the_evals_gate() -> None:
    deploy, test = workflow("deploy.yml"), workflow("test.yml")
    jobs = deploy["jobs"]
    [tests] = [n for n, j in jobs.items() if j.get("uses") == "./.github/workflows/test.yml"]
    assert "workflow_call" in test["on"]
    runs = [step.get("run", "") for job in test["jobs"].values() for step in job.get("steps", [])]
    for target in ("make check", "make evals-gate", "make test"):
        assert any(r.strip() == target for r in runs), f"test.yml does not run {target}"
    for name in jobs.keys() - {tests}:
        assert tests in upstream(jobs, name), f"{name} does not wait for the tests"
    assert "build-and-push" in upstream(jobs, "deploy")
    assert set(deploy["on"]) == {"push", "workflow_dispatch"} and deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_run" not in deploy["on"]       # no path around the tests (a dispatch runs them too)


def test_ssh_trusts_only_the_known_host_key_from_the_secrets() -> None:
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "ssh-keyscan" not in re.sub(r"(?m)^\s*#.*$", "", text)      # a key scanned at deploy time proves nothing
    assert not re.search(r"StrictHostKeyChecking[ =](no|accept-new)", text)
    steps = workflow("deploy.yml")["jobs"]["deploy"]["steps"]
    [setup] = [s for s in steps if "known_hosts" in s.get("run", "")]
    assert setup["env"]["DEPLOY_KNOWN_HOSTS"] == "${{ secrets.DEPLOY_KNOWN_HOSTS }}"
    assert '"$DEPLOY_KNOWN_HOSTS" > ~/.ssh/known_hosts' in setup["run"] and 'exit 1' in setup["run"]
    config = setup["run"].split("<<CONFIG", 1)[1].split("CONFIG", 1)[0]
    assert re.search(r"(?m)^\s*Host quorum-server$", config)
    assert re.search(r"(?m)^\s*StrictHostKeyChecking yes$", config)
    assert re.search(r"(?m)^\s*UserKnownHostsFile ~/.ssh/known_hosts$", config)
    commands = [line for s in steps for line in s.get("run", "").splitlines()
                if re.match(r"\s*(printf .*\| )?(ssh|scp)\b", line) or " | ssh " in line]
    assert commands and all("quorum-server" in c and "DEPLOY_HOST" not in c for c in commands)


def test_the_deploy_step_runs_the_market_hours_guarded_script_forced_only_by_hand() -> None:
    deploy = workflow("deploy.yml")
    assert deploy["on"]["workflow_dispatch"]["inputs"]["force"] == {
        "description": deploy["on"]["workflow_dispatch"]["inputs"]["force"]["description"],
        "type": "boolean", "default": False}
    job = deploy["jobs"]["deploy"]
    assert job["env"]["FORCE"] == "${{ github.event_name == 'workflow_dispatch' && inputs.force && '1' || '0' }}"
    assert any("FORCE=$FORCE bash quorum/deploy/deploy.sh '$IMAGE'" in s.get("run", "") for s in job["steps"])


STUB_DOCKER = """#!/usr/bin/env bash
echo "$*" >> "$DOCKER_LOG"
if [ "$1" = run ] && [ "${@: -1}" = market-closed ]; then exit "${MARKET_EXIT:-0}"; fi
exit 0
"""


@pytest.fixture
def server(tmp_path: Path) -> Path:
    """A fake ~/quorum with the deploy script, an .env.prod and a stub `docker` first on PATH."""
    home = tmp_path / "quorum"
    (home / "deploy").mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "deploy.sh", home / "deploy" / "deploy.sh")
    (home / ".env.prod").write_text("POSTGRES_PASSWORD=x\nQUORUM_IMAGE=registry/quorum:old\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STUB_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    return home


def deploy(server: Path, *args: str, market_exit: int, force: str | None = None) -> tuple[int, list[str], str]:
    log = server.parent / "docker.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{server.parent / 'bin'}:{os.environ['PATH']}", "DOCKER_LOG": str(log),
           "MARKET_EXIT": str(market_exit)}
    env.pop("FORCE", None)
    if force is not None:
        env["FORCE"] = force
    result = subprocess.run(["bash", str(server / "deploy" / "deploy.sh"), "registry/quorum:new", *args],
                            cwd="/", env=env, capture_output=True, text=True, check=False)
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, calls, result.stderr


def restarted(calls: list[str]) -> bool:
    return any(re.search(r"compose .* up -d --no-build --remove-orphans$", c) for c in calls)


def test_deploy_goes_ahead_when_the_market_is_closed(server: Path) -> None:
    code, calls, err = deploy(server, market_exit=0)
    assert code == 0, err
    assert calls[:2] == ["pull registry/quorum:new", "run --rm --network none registry/quorum:new market-closed"]
    assert restarted(calls) and any(c.endswith("run --rm api db upgrade") for c in calls)
    assert "QUORUM_IMAGE=registry/quorum:new" in (server / ".env.prod").read_text()


@pytest.mark.parametrize("market_exit", [1, 125])   # the session is open; the check itself failed
def test_deploy_changes_nothing_during_the_session_or_when_the_check_fails(server: Path, market_exit: int) -> None:
    before = (server / ".env.prod").read_text()
    code, calls, err = deploy(server, market_exit=market_exit)
    assert code == 3 and "refused" in err
    assert calls == ["pull registry/quorum:new", "run --rm --network none registry/quorum:new market-closed"]
    assert (server / ".env.prod").read_text() == before


@pytest.mark.parametrize(("args", "force"), [((), "1"), (("--force",), None)])
def test_a_forced_deploy_goes_ahead_during_the_session(server: Path, args: tuple[str, ...], force: str | None) -> None:
    code, calls, err = deploy(server, *args, market_exit=1, force=force)
    assert code == 0 and "FORCED" in err and restarted(calls)


def test_deploy_without_an_image_or_env_file_stops_before_docker(server: Path) -> None:
    (server / ".env.prod").unlink()
    code, calls, err = deploy(server, market_exit=0)
    assert code == 2 and calls == [] and ".env.prod" in err
