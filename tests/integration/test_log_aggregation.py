"""Log aggregation in the production compose: Alloy ships the containers' lines to Loki, Grafana reads them.

No Docker here, so each piece is checked as far as files allow: the compose services (the schema test in
test_compose_files.py covers the file as a whole), Loki's config, Alloy's config read with a parser of its syntax
(every reference resolves, the project filter, the labels it sets), the provisioned datasource, and the logs
dashboard, whose LogQL query is run (by an emulation of Loki's stream selector, `| json` parser and label filters)
over the real lines that `configure_logging` writes during real (failing) trading cycles.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from entrypoints.logging_setup import configure_logging
from tests.integration.test_compose_files import _metric_names
from tests.support.alloy_syntax import Block, Reference, parse
from tests.support.world import CALENDAR, feed_close, feed_open, make_world

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.prod.yml").read_text())
LOKI = yaml.safe_load((ROOT / "deploy/loki/loki.yaml").read_text())
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/quorum-logs.json").read_text())
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')  # a LogQL label matcher
STAGE = re.compile(r'\|\s*(json|\w+\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*")\s*')  # `| json` or `| label op "value"`


def alloy() -> dict[str, Block]:
    """Alloy's components by `name.label`."""
    return {f"{b.name}.{b.label}": b for b in parse((ROOT / "deploy/alloy/config.alloy").read_text())}


def references(value: Any) -> list[str]:
    if isinstance(value, Reference):
        return [value.path]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in references(v)]
    return []


def all_attributes(block: Block) -> list[Any]:
    return [*block.attributes.values(), *(a for b in block.blocks for a in all_attributes(b))]


def datasources() -> list[dict[str, Any]]:
    folder = ROOT / "deploy/grafana/provisioning/datasources"
    return [d for f in sorted(folder.glob("*.y*ml")) for d in yaml.safe_load(f.read_text())["datasources"]]


def test_loki_and_alloy_run_in_the_production_compose() -> None:
    services = COMPOSE["services"]
    loki, shipper = services["loki"], services["alloy"]
    assert re.fullmatch(r"grafana/loki:\d+\.\d+\.\d+", loki["image"])
    assert re.fullmatch(r"grafana/alloy:v\d+\.\d+\.\d+", shipper["image"])
    assert "ports" not in loki and "ports" not in shipper, "the log store is reached over the compose network only"
    assert "./deploy/loki/loki.yaml:/etc/loki/loki.yaml:ro" in loki["volumes"]
    assert loki["command"] == ["-config.file=/etc/loki/loki.yaml"]
    assert f"lokidata:{LOKI['common']['path_prefix']}" in loki["volumes"]
    assert "./deploy/alloy/config.alloy:/etc/alloy/config.alloy:ro" in shipper["volumes"]
    assert shipper["command"][0] == "run" and shipper["command"][-1] == "/etc/alloy/config.alloy"
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in shipper["volumes"]
    assert services["grafana"]["depends_on"]["loki"] == {"condition": "service_healthy"}
    port = LOKI["server"]["http_listen_port"]
    assert f"127.0.0.1:{port}/ready" in " ".join(loki["healthcheck"]["test"])


def test_loki_keeps_a_month_of_logs_on_its_volume() -> None:
    assert LOKI["auth_enabled"] is False
    prefix = LOKI["common"]["path_prefix"]
    storage = LOKI["common"]["storage"]["filesystem"]
    assert all(Path(p).is_relative_to(prefix) for p in storage.values())
    assert Path(LOKI["compactor"]["working_directory"]).is_relative_to(prefix)
    assert LOKI["compactor"]["retention_enabled"] is True
    assert LOKI["limits_config"]["retention_period"] == "744h"
    [schema] = LOKI["schema_config"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")


def test_alloy_ships_this_projects_containers_to_loki_with_few_labels() -> None:
    components = alloy()
    assert set(components) == {"discovery.docker.containers", "discovery.relabel.containers",
                               "loki.source.docker.containers", "loki.write.local"}
    for block in components.values():
        for ref in references(all_attributes(block)):
            assert any(ref.startswith(name + ".") for name in components), f"{block.name}: unknown {ref}"
    discovery, relabel = components["discovery.docker.containers"], components["discovery.relabel.containers"]
    source, write = components["loki.source.docker.containers"], components["loki.write.local"]
    socket = "unix:///var/run/docker.sock"
    assert discovery.attributes["host"] == source.attributes["host"] == socket
    [project_filter] = discovery.children("filter")
    assert project_filter.attributes == {"name": "label", "values": [f"com.docker.compose.project={COMPOSE['name']}"]}
    rules = {r.attributes["target_label"]: r.attributes["source_labels"] for r in relabel.children("rule")}
    assert rules == {"service": ["__meta_docker_container_label_com_docker_compose_service"],
                     "stream": ["__meta_docker_container_log_stream"]}
    assert source.attributes["targets"] == Reference("discovery.docker.containers.targets")
    assert source.attributes["relabel_rules"] == Reference("discovery.relabel.containers.rules")
    assert source.attributes["forward_to"] == [Reference("loki.write.local.receiver")]
    assert source.attributes["labels"] == {"job": "quorum"}
    [endpoint] = write.children("endpoint")
    assert endpoint.attributes["url"] == f"http://loki:{LOKI['server']['http_listen_port']}/loki/api/v1/push"
    assert not any(b.name.startswith("loki.process") for b in components.values()), \
        "lines are shipped as written: `| json` parses them at query time, and cycle ids never become labels"


def test_the_alloy_reader_refuses_what_it_cannot_read() -> None:
    with pytest.raises(SyntaxError):
        parse('loki.write "local" { endpoint { url = } }')
    with pytest.raises(SyntaxError):
        parse('loki.write "local" { endpoint { url = "http://loki:3100" }')


def test_grafana_has_the_loki_datasource_and_prometheus_stays_the_default() -> None:
    sources = {d["uid"]: d for d in datasources()}
    loki = sources["quorum-loki"]
    assert (loki["type"], loki["url"]) == ("loki", f"http://loki:{LOKI['server']['http_listen_port']}")
    assert [uid for uid, d in sources.items() if d.get("isDefault")] == ["quorum-prometheus"]


def loki_targets() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in DASHBOARD["panels"] for t in p["targets"] if t["datasource"]["type"] == "loki"]


def test_the_logs_dashboard_filters_by_cycle_id_beside_the_metrics() -> None:
    uids = {d["uid"] for d in datasources()}
    assert {p["datasource"]["uid"] for p in DASHBOARD["panels"]} <= uids
    assert {t["datasource"]["uid"] for p in DASHBOARD["panels"] for t in p["targets"]} <= uids
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["cycle_id"]["type"] == "textbox" and variables["cycle_id"]["query"] == ".*"
    assert variables["service"]["datasource"]["uid"] == "quorum-loki"
    assert any(p["type"] == "logs" and p["datasource"]["uid"] == "quorum-loki" for p in DASHBOARD["panels"])
    shipped = {"job"} | set(re.findall(r'target_label\s*=\s*"(\w+)"', (ROOT / "deploy/alloy/config.alloy").read_text()))
    for panel, target in loki_targets():
        assert '| json | cycle_id=~"$cycle_id"' in target["expr"], panel["title"]
        selector = re.search(r"\{([^}]*)\}", target["expr"]).group(1)  # type: ignore[union-attr]
        assert {m[0] for m in MATCHER.findall(selector)} <= shipped, f"{panel['title']}: a label Alloy never sets"
    prometheus = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]
                  if t["datasource"]["type"] == "prometheus"]
    assert prometheus, "no metrics beside the logs"
    exported = _metric_names()
    for metric in {m for e in prometheus for m in re.findall(r"\bquorum_[a-z_]+", e)}:
        assert re.sub(r"_(total|bucket|count|sum)$", "", metric) in exported, metric



def _matches(op: str, value: str, pattern: str) -> bool:
    found = {"=": value == pattern, "!=": value != pattern, "=~": re.fullmatch(pattern, value) is not None,
             "!~": re.fullmatch(pattern, value) is None}
    return found[op]


def json_labels(line: str) -> dict[str, str]:
    """What LogQL's `| json` adds: nested keys joined with `_`, arrays skipped, `__error__` for a non-JSON line."""
    try:
        obj = json.loads(line)
    except ValueError:
        return {"__error__": "JSONParserErr"}
    if not isinstance(obj, dict):
        return {"__error__": "JSONParserErr"}
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}_{key}" if prefix else key, inner)
        elif not isinstance(value, list):
            text = json.dumps(value) if isinstance(value, bool) or value is None else str(value)
            out[re.sub(r"[^A-Za-z0-9_]", "_", prefix)] = "" if value is None else text

    walk("", obj)
    return out


def logql_select(expr: str, lines: list[str], stream: dict[str, str]) -> list[str]:
    """The lines of one stream that a LogQL log query `{selector} | json | label filters...` returns."""
    selector, _, pipeline = expr.partition("}")
    if not all(_matches(op, stream.get(k, ""), v) for k, op, v in MATCHER.findall(selector)):
        return []
    stages = STAGE.findall(pipeline)
    assert STAGE.sub("", pipeline).strip() == "", f"a stage this emulation does not know in {pipeline!r}"
    selected = []
    for line in lines:
        labels = dict(stream)
        keep = True
        for stage in stages:
            if stage == "json":
                labels |= json_labels(line)
                continue
            [(key, op, value)] = MATCHER.findall(stage)
            keep = keep and _matches(op, labels.get(key, ""), value)
        if keep:
            selected.append(line)
    return selected


@pytest.fixture
def captured_logs() -> Any:
    """Quorum's real log configuration, writing into a buffer; the previous logging restored after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    yield buffer
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


async def test_the_dashboard_query_finds_exactly_one_cycles_real_log_lines(captured_logs: io.StringIO) -> None:
    world = await make_world()

    async def feed_down(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("quote feed down")

    world.app.market.latest_quotes = feed_down
    ids = []
    for day in CALENDAR.sessions(date(2024, 3, 4), date(2024, 3, 5)):
        feed_open(world, day)
        result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
        assert result.status == "failed"
        ids.append(result.cycle_id)
        feed_close(world, day)
    structlog.get_logger("test").info("outside_any_cycle")
    lines = captured_logs.getvalue().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines), "every line is one JSON object"
    records = [json.loads(line) for line in lines]
    for cycle_id in ids:
        mine = [r for r in records if r.get("cycle_id") == cycle_id]
        assert any(r["event"] == "cycle_failed" and r["level"] == "error" and "quote feed down" in r["exception"]
                   for r in mine), "the failure and its traceback are one line carrying the cycle id"

    [logs_panel] = [p for p in DASHBOARD["panels"] if p["type"] == "logs" and p["title"] == "Logs"]
    query = logs_panel["targets"][0]["expr"].replace("$service", ".+")
    stream = {"job": "quorum", "service": "worker", "stream": "stderr"}
    first = logql_select(query.replace("$cycle_id", ids[0]), lines, stream)
    assert first and [json.loads(x)["cycle_id"] for x in first] == [ids[0]] * len(first)
    assert len(first) == sum(1 for r in records if r.get("cycle_id") == ids[0])
    assert logql_select(query.replace("$cycle_id", ".*"), lines, stream) == lines
    assert logql_select(query.replace("$cycle_id", "c-19990101-.*"), lines, stream) == []
    assert logql_select(query.replace("$cycle_id", ".*"), lines, {"job": "other", "service": "worker"}) == []
    [errors] = [p for p in DASHBOARD["panels"] if p["title"] == "Errors and warnings"]
    failures = logql_select(errors["targets"][0]["expr"].replace("$service", ".+").replace("$cycle_id", ids[1]),
                            lines, stream)
    assert failures and all(json.loads(x)["level"] in ("warning", "error", "critical") for x in failures)
    assert any(json.loads(x)["event"] == "cycle_failed" for x in failures)
