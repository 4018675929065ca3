"""docker-compose.yml and docker-compose.prod.yml against the Compose Specification, and against the CLI.

The schema is the Compose Specification's own JSON schema (compose-spec project, Apache-2.0; see
tests/fixtures/compose-spec.LICENSE), vendored from the copy shipped in the check-jsonschema 0.39.0
wheel on PyPI, so the test runs offline. Where a Compose binary is installed, `docker compose config`
must accept both files too. Every command a container runs from the Quorum image (service command,
health check, the Dockerfile's CMD) must be a real `quorum` command with real options.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.prod.yml"]
HOST_MOUNTS = {"alloy": ("/var/run/docker.sock:/var/run/docker.sock:ro",)}  # the log shipper reads the containers


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def schema_errors(doc: Any) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def cli_root() -> Any:
    from entrypoints.cli import app

    return typer.main.get_command(app)


def check_cli(argv: list[str]) -> str | None:
    """None when `quorum ARGV` names an existing command and only options it has; else what is wrong."""
    cmd, path, rest = cli_root(), ["quorum"], list(argv)
    while isinstance(getattr(cmd, "commands", None), dict) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name not in cmd.commands:
            return f"`{' '.join(path)}` has no command {name!r} (it has: {', '.join(sorted(cmd.commands))})"
        cmd, path = cmd.commands[name], [*path, name]
    if isinstance(getattr(cmd, "commands", None), dict):
        return f"`{' '.join(path)}` is a group, not a command"
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    unknown = [a.split("=", 1)[0] for a in rest if a.startswith("-") and a.split("=", 1)[0] not in known]
    return f"`{' '.join(path)}` has no option(s) {unknown}" if unknown else None


def image_commands(doc: dict[str, Any]) -> dict[str, list[str]]:
    """service (or service/healthcheck) -> quorum argv, for every service built from the Quorum image."""
    out: dict[str, list[str]] = {}
    for name, svc in doc["services"].items():
        if "build" not in svc:
            continue
        assert isinstance(svc.get("command"), list), f"{name}: give the command as a list"
        out[name] = svc["command"]
        test = svc.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "quorum"]:
            out[f"{name}/healthcheck"] = test[2:]
    return out


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_follows_the_compose_specification(name: str) -> None:
    assert schema_errors(load(name)) == []


def test_the_schema_check_catches_a_broken_file() -> None:
    doc = load("docker-compose.prod.yml")
    doc["services"]["api"]["restart"] = ["unless-stopped"]
    doc["services"]["worker"]["comand"] = ["worker"]
    errors = schema_errors(doc)
    assert any("services/api/restart" in e for e in errors) and any("comand" in e for e in errors)


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_container_command_exists_in_the_cli(name: str) -> None:
    commands = image_commands(load(name))
    assert {"api", "worker", "monitor", "chat"} <= commands.keys()
    problems = {svc: err for svc, argv in commands.items() if (err := check_cli(argv)) is not None}
    assert problems == {}


def test_the_image_default_command_exists_in_the_cli() -> None:
    text = (ROOT / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entrypoint == ["quorum"] and cmd[0] == "serve"
    assert check_cli(cmd) is None
    assert re.search(r"^USER (?!root)\S+$", text, re.M), "the image must not run as root"


def test_the_cli_check_refuses_unknown_commands_and_options() -> None:
    assert check_cli(["no-such-command"]) is not None
    assert check_cli(["db", "upgrade", "--no-such-option"]) is not None


def test_production_services_restart_check_health_and_keep_data_in_named_volumes() -> None:
    doc = load("docker-compose.prod.yml")
    services = doc["services"]
    assert {"postgres", "redis", "api", "worker", "monitor", "chat", "prometheus", "grafana"} <= services.keys()
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    for name, svc in services.items():
        assert svc.get("restart") == "unless-stopped", name
        assert "healthcheck" in svc, name
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith("./") or source in doc["volumes"] or volume in HOST_MOUNTS.get(name, ()), \
                f"{name}: undeclared volume {source}"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
    assert all(svc.get("env_file") == [".env.prod"] for n, svc in services.items() if "build" in svc)
    for name, svc in services.items():
        for key, value in svc.get("environment", {}).items():
            if re.search(r"PASSWORD|API_KEY|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:?[?-][^}]*)?\}", str(value)), f"{name}: {key} is written here"
            assert not re.search(r"://[^:/@]+:(?!\$\{)[^@]+@", str(value)), f"{name}: {key} has a password"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_redis_requires_a_password_that_every_service_uses(name: str) -> None:
    """The password comes from REDIS_PASSWORD (required in production, a dev-only default otherwise); the Redis
    server, its health check and every service's REDIS_URL use it. (tests/integration/test_redis_json_jobs.py
    starts redis-server with this very command and checks that it refuses clients without the password.)"""
    doc = load(name)
    ref = r"\$\{REDIS_PASSWORD:\?[^}]+\}" if name.endswith(".prod.yml") else r"\$\{REDIS_PASSWORD:-[^}]+\}"
    redis = doc["services"]["redis"]
    command = redis["command"]
    assert re.fullmatch(ref, command[command.index("--requirepass") + 1])
    assert re.fullmatch(ref, redis["environment"]["REDISCLI_AUTH"])
    assert "PONG" in " ".join(redis["healthcheck"]["test"])
    apps = {n: svc for n, svc in doc["services"].items() if "build" in svc}
    assert apps and all(re.fullmatch(rf"redis://:{ref}@redis:6379/\d+", svc["environment"]["REDIS_URL"])
                        for svc in apps.values())


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration))


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_docker_stop_gives_the_worker_and_the_api_longer_than_they_drain(name: str) -> None:
    from adapters.queue import WorkerDeps
    from entrypoints.commands.serve import GRACEFUL_HTTP_S

    services = load(name)["services"]
    deps = WorkerDeps(runner=None, uow_factory=None, calendar=None, clock=None)  # type: ignore[arg-type]
    assert _seconds(services["worker"]["stop_grace_period"]) > deps.shutdown_wait.total_seconds()
    assert _seconds(services["api"]["stop_grace_period"]) > GRACEFUL_HTTP_S


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_chat_runs_from_the_app_image_on_loopback_beside_the_api(name: str) -> None:
    services = load(name)["services"]
    chat, api = services["chat"], services["api"]
    assert chat["command"] == ["chat", "--host", "0.0.0.0", "--port", "8001"]  # noqa: S104 - inside the container
    assert chat["ports"] == ["127.0.0.1:8001:8001"]
    assert (chat["image"], chat["build"], chat["environment"]) == (api["image"], api["build"], api["environment"])
    assert chat.get("profiles") == api.get("profiles") and chat.get("env_file") == api.get("env_file")
    assert "8001/health" in " ".join(chat["healthcheck"]["test"])


def test_prometheus_scrapes_the_api_and_grafana_is_provisioned() -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [job] = [j for j in prom["scrape_configs"] if j["job_name"] == "quorum-api"]
    assert job["static_configs"][0]["targets"] == ["api:8000"] and job["metrics_path"] == "/metrics"
    assert job["http_headers"]["X-API-Key"]["files"] == ["/run/secrets/quorum_api_key"]
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/quorum.yml").read_text())
    uids = {d["uid"] for d in sources["datasources"]}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/quorum.json").read_text())
    used = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert used <= uids
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("equity", "cycles", "orders", "rejects by hard limit", "breaker", "llm cost", "llm latency"):
        assert topic in titles
    exprs = " ".join(t.get("expr", "") for p in dashboard["panels"] for t in p["targets"])
    registry_names = _metric_names()
    for metric in set(re.findall(r"\bquorum_[a-z_]+", exprs)):
        base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
        assert base in registry_names, f"dashboard uses {metric}, which the API does not export"


def _metric_names() -> set[str]:
    from datetime import UTC, datetime

    from adapters.inmemory.clock import SimClock
    from entrypoints.api.metrics import ApiMetrics
    from entrypoints.container import build_container
    from entrypoints.settings import load_settings

    metrics = ApiMetrics(build_container(load_settings(env="test"), "test").uow_factory(), "live",
                         SimClock(datetime(2024, 3, 5, tzinfo=UTC)))
    return {m.name for m in metrics.registry.collect()}


def test_grafana_reads_the_database_as_its_read_only_role_through_the_reporting_views() -> None:
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/quorum.yml").read_text())
    [db] = [d for d in sources["datasources"] if d["uid"] == "quorum-postgres"]
    assert db["user"] == "quorum_grafana"
    assert db["secureJsonData"]["password"] == "$QUORUM_GRAFANA_DB_PASSWORD"
    grafana = load("docker-compose.prod.yml")["services"]["grafana"]
    assert "QUORUM_GRAFANA_DB_PASSWORD" in grafana["environment"]
    assert not any("POSTGRES_PASSWORD" in str(v) for v in grafana["environment"].values())  # not the owner's
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/quorum.json").read_text())
    sql = [t["rawSql"] for p in dashboard["panels"] if p["datasource"]["uid"] == "quorum-postgres"
           for t in p["targets"]]
    read = {name for q in sql for name in re.findall(r"\b(?:FROM|JOIN)\s+([\w.\"]+)", q, re.I)}
    assert sql and read <= {"reporting.equity", "reporting.trades"}


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_api_answers_the_service_host_name_and_production_reads_need_the_key(name: str) -> None:
    env = load(name)["services"]["api"]["environment"]
    assert "api" in str(env["QUORUM_API__ALLOWED_HOSTS"]).split(",")  # the monitor and Prometheus call http://api:8000
    if name == "docker-compose.prod.yml":
        assert env["QUORUM_API__OPEN_READS_ON_LOOPBACK"] == "false"


def _compose_binary() -> list[str] | None:
    for argv in (["docker", "compose"], ["docker-compose"], ["podman-compose"]):
        if shutil.which(argv[0]) is None:
            continue
        probe = subprocess.run([*argv, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return argv
    return None


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_docker_compose_config_accepts_the_file(name: str, tmp_path: Path) -> None:
    compose = _compose_binary()
    if compose is None:
        pytest.skip("no Compose binary installed (docker compose / docker-compose): the JSON schema test covers it")
    for f in (name, "Dockerfile"):
        shutil.copy(ROOT / f, tmp_path / f)
    (tmp_path / ".env.prod").write_text("")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "quorum_api_key").write_text("x")
    env = {**os.environ, "POSTGRES_PASSWORD": "x", "GRAFANA_ADMIN_PASSWORD": "y", "QUORUM_GRAFANA_DB_PASSWORD": "z",
           "REDIS_PASSWORD": "z"}
    result = subprocess.run([*compose, "-f", name, "--profile", "app", "config", "--quiet"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


WORKFLOW_SCHEMA = ROOT / "tests" / "fixtures" / "github-workflow.schema.json"  # SchemaStore, Apache-2.0
DEPLOY_SECRETS = {"REGISTRY_USERNAME", "REGISTRY_TOKEN", "DEPLOY_HOST", "DEPLOY_USER", "DEPLOY_SSH_KEY",
                  "DEPLOY_KNOWN_HOSTS"}


@pytest.mark.parametrize("name", ["test.yml", "deploy.yml"])
def test_github_workflows_follow_the_workflow_schema(name: str) -> None:
    schema = json.loads(WORKFLOW_SCHEMA.read_text())
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as true
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)] == []


def test_ci_runs_check_and_test_on_pull_requests_and_deploy_names_its_secrets() -> None:
    test = (ROOT / ".github/workflows/test.yml").read_text()
    assert "pull_request" in test and "make check" in test and "make test" in test
    deploy = (ROOT / ".github/workflows/deploy.yml").read_text()
    assert set(re.findall(r"secrets\.([A-Z_]+)", deploy)) == DEPLOY_SECRETS
    assert "branches: [main]" in deploy and "docker-compose.prod.yml" in deploy


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_app_service_shares_one_data_volume_so_the_go_live_record_survives_restarts(name: str) -> None:
    doc = load(name)
    apps = {n: svc for n, svc in doc["services"].items() if "build" in svc}
    assert {"api", "worker", "chat", "monitor"} <= apps.keys()
    for svc_name, svc in apps.items():
        data_dir = svc["environment"]["QUORUM_DATA_DIR"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", [])}
        assert mounts.get(data_dir) == "quorumdata", f"{svc_name} keeps {data_dir} in its own container"
    assert "quorumdata" in doc["volumes"]
