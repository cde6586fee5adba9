"""The systemd, container, compose and Kubernetes files in deploy/ agree with driftd and each other.

What is checked here, without Docker, a cluster or a running systemd: every YAML parses; ports,
paths, names and labels cross-reference (9108 everywhere, probe and scrape paths are routes of
driftd's app, mounted repo files exist, selectors select); every shipped driftd configuration
loads and its connectors build; every command line the files run parses with driftd's own CLI;
the systemd unit carries its hardening and passes `systemd-analyze verify` (skipped only where
that binary is missing); the Dockerfile's health check command works against a real driftd HTTP
server. Building the image and starting the stacks is out of reach here (no Docker daemon, no
compose plugin, no cluster); `kubectl kustomize` renders the manifests where kubectl exists.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml
from starlette.testclient import TestClient

from monitor.cli import main as cli_main
from monitor.config import ServerConfig, load_config
from monitor.daemon.engine import MonitorRunner
from monitor.metrics import Metrics
from monitor.plugins import PluginManager
from monitor.daemon.scheduler import make_trigger
from monitor.http.server import HttpServer, create_app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "driftd.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE = DEPLOY / "docker" / "Dockerfile.dockerignore"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
COMPOSE_PROMETHEUS = COMPOSE_DIR / "prometheus.yml"
K8S = DEPLOY / "k8s"
EXAMPLE_CONFIG = ROOT / "examples" / "driftd.yaml"
RULES = DEPLOY / "prometheus" / "driftd-rules.yml"
GRAFANA = DEPLOY / "grafana"

PORT = ServerConfig().port
CONFIG_PATH = "/etc/driftd/driftd.yaml"
STATE_DIR = "/var/lib/driftd"
JOB = "driftd"  # the alert rules and dashboards select job="driftd"

#: Every file this test covers (the YAML ones are also parsed by test_deploy_files.py).
PLATFORM_FILES = [UNIT, DOCKERFILE, DOCKERIGNORE, COMPOSE, COMPOSE_PROMETHEUS, COMPOSE_DIR / "driftd.yaml",
                  *sorted(K8S.glob("*.yaml")), EXAMPLE_CONFIG]
YAML_FILES = [p for p in PLATFORM_FILES if p.suffix in (".yaml", ".yml")]

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


# ---- a small Dockerfile reader ---------------------------------------------------------------

def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, line continuations joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank lines and comments (also inside a continuation, as Docker does)
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"
    stages: list[list[tuple[str, str]]] = [[]]  # stage 0: the global ARGs before the first FROM
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _env_pairs(arguments: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(arguments))


def _final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages()[-1]


def _one(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for kw, args in stage if kw == keyword]
    assert len(found) == 1, f"the final stage has {len(found)} {keyword} instructions"
    return found[0]


def _healthcheck_command() -> list[str]:
    arguments = _one(_final_stage(), "HEALTHCHECK")
    options, _, command = arguments.partition("CMD ")
    return json.loads(command)


# ---- a small systemd unit reader ---------------------------------------------------------------

def unit_sections() -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, line in enumerate(UNIT.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        assert not stripped.endswith("\\"), f"line {number}: keep unit lines unbroken"
        if stripped.startswith("["):
            current = sections.setdefault(stripped.strip("[]"), {})
            continue
        assert current is not None and "=" in stripped, f"line {number}: not a key=value line: {line}"
        key, value = (part.strip() for part in stripped.split("=", 1))
        current.setdefault(key, []).append(value)
    return sections


def _service() -> dict[str, list[str]]:
    return unit_sections()["Service"]


# ---- Kubernetes --------------------------------------------------------------------------------

def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, from every manifest (kustomization.yaml is not a cluster object)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _docs(path):
            if doc.get("kind") == "Kustomization":
                continue
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{key} is defined twice"
            objects[key] = doc
    return objects


def _deployment() -> dict[str, Any]:
    return k8s_objects()[("Deployment", "driftd")]


def _pod_spec() -> dict[str, Any]:
    return _deployment()["spec"]["template"]["spec"]


def _containers() -> list[dict[str, Any]]:
    spec = _pod_spec()
    return [*spec.get("initContainers", []), *spec["containers"]]


def _main_container() -> dict[str, Any]:
    (container,) = [c for c in _pod_spec()["containers"] if c["name"] == "driftd"]
    return container


def _service_object() -> dict[str, Any]:
    return k8s_objects()[("Service", "driftd")]


def _kustomization() -> dict[str, Any]:
    return _docs(K8S / "kustomization.yaml")[0]


# ---- compose -----------------------------------------------------------------------------------

def compose_services() -> dict[str, dict[str, Any]]:
    return _docs(COMPOSE)[0]["services"]


def _compose_value(text: str) -> str:
    """Compose's own ${VAR:-default} interpolation with an empty environment."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", text)


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source on the host, target in the container) for the bind mounts (not named volumes)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


# ---- driftd configurations ---------------------------------------------------------------------

def _configmap_config() -> str:
    return k8s_objects()[("ConfigMap", "driftd-config")]["data"]["driftd.yaml"]


def env_references(text: str) -> list[tuple[str, str]]:
    """(name, ":-default" or "") for every ${VAR} in the values of a YAML document (not its comments)."""
    found: list[tuple[str, str]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.extend(_ENV_REFERENCE.findall(value))

    walk(yaml.safe_load(text))
    return found


def _dummy_environment(text: str) -> dict[str, str]:
    """A value for every ${VAR} a configuration references (a PostgreSQL URL for the storage)."""
    environ = {}
    for name, default in env_references(text):
        if name == "DRIFTD_STORAGE_URL":
            environ[name] = "postgresql+psycopg://driftd:secret@postgres:5432/driftd"
        elif not default:
            environ[name] = "placeholder"
    return environ


def _shipped_configs(tmp_path: Path) -> dict[str, Path]:
    k8s_config = tmp_path / "k8s-configmap-driftd.yaml"
    k8s_config.write_text(_configmap_config(), encoding="utf-8")
    return {
        "examples/driftd.yaml": EXAMPLE_CONFIG,
        "deploy/compose/driftd.yaml": COMPOSE_DIR / "driftd.yaml",
        "deploy/k8s/configmap.yaml (driftd.yaml)": k8s_config,
    }


# ---- the driftd command lines the files run ------------------------------------------------------

def parse_driftd_args(args: list[str]) -> click.Command:
    """Resolve a driftd command line with driftd's real CLI (options included); the leaf command."""
    command: click.Command = cli_main
    rest = list(args)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    assert not isinstance(command, click.Group), f"driftd {' '.join(args)}: no such command"
    # Parses every option and argument as the real invocation would, without running anything.
    command.make_context(command.name or "driftd", rest)
    return command


def _unit_command(value: str) -> list[str]:
    words = shlex.split(value)
    assert words[:2] == ["/usr/bin/env", "driftd"], f"expected /usr/bin/env driftd ...: {value}"
    return words[2:]


def command_lines() -> dict[str, list[str]]:
    """Where -> the driftd arguments, for every driftd invocation in deploy/."""
    lines = {"systemd ExecStart": _unit_command(_service()["ExecStart"][0])}
    commented = re.search(r"^#ExecStartPre=(.*)$", UNIT.read_text(encoding="utf-8"), re.MULTILINE)
    assert commented, "the unit documents the optional ExecStartPre migration"
    lines["systemd ExecStartPre (commented)"] = _unit_command(commented.group(1))
    stage = _final_stage()
    lines["Dockerfile ENTRYPOINT+CMD"] = json.loads(_one(stage, "ENTRYPOINT"))[1:] + json.loads(_one(stage, "CMD"))
    for name, service in compose_services().items():
        if "command" in service and service.get("image", "").startswith("driftd"):
            lines[f"compose {name}"] = service["command"]
    for container in _containers():
        lines[f"k8s container {container['name']}"] = container["args"]
    return lines


# =================================================================================================

@pytest.mark.parametrize("path", YAML_FILES, ids=_rel)
def test_every_yaml_document_parses(path: Path) -> None:
    docs = _docs(path)
    assert docs and all(isinstance(doc, dict) for doc in docs), f"{_rel(path)}: expected mappings"


def test_paths_named_in_the_files_exist_in_the_repository() -> None:
    pattern = re.compile(r"(?<![\w./-])((?:deploy|examples)/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)")
    seen = set()
    for path in PLATFORM_FILES:
        for found in pattern.findall(path.read_text(encoding="utf-8")):
            found = found.rstrip(".")
            seen.add(found)
            assert (ROOT / found).exists(), f"{_rel(path)} names {found}, which is not in the repository"
    assert "examples/driftd.yaml" in seen and "deploy/docker/Dockerfile" in seen


# ---- driftd's side: routes, commands, configurations -------------------------------------------

def test_probe_and_scrape_paths_are_routes_of_driftd() -> None:
    app = create_app(Metrics(), lambda: [])
    routes = {getattr(route, "path", None) for route in app.routes}
    used = {
        "Dockerfile HEALTHCHECK": re.search(r"/[a-z]+z\b", " ".join(_healthcheck_command())).group(0),
        "k8s startupProbe": _main_container()["startupProbe"]["httpGet"]["path"],
        "k8s livenessProbe": _main_container()["livenessProbe"]["httpGet"]["path"],
        "k8s readinessProbe": _main_container()["readinessProbe"]["httpGet"]["path"],
        "ServiceMonitor": k8s_objects()[("ServiceMonitor", "driftd")]["spec"]["endpoints"][0]["path"],
        "compose prometheus.yml": _docs(COMPOSE_PROMETHEUS)[0]["scrape_configs"][0].get("metrics_path", "/metrics"),
    }
    assert used["Dockerfile HEALTHCHECK"] == "/healthz"
    assert used["k8s livenessProbe"] == "/healthz" and used["k8s readinessProbe"] == "/readyz"
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    with TestClient(app) as client:
        for where, path in used.items():
            assert path in routes, f"{where} uses {path}, which driftd does not serve"
            assert client.get(path).status_code == 200, f"{where}: GET {path}"


def test_every_driftd_command_line_parses_with_the_cli() -> None:
    lines = command_lines()
    leaves = {where: parse_driftd_args(args).name for where, args in lines.items()}
    assert leaves["systemd ExecStart"] == "run" and leaves["Dockerfile ENTRYPOINT+CMD"] == "run"
    assert leaves["compose driftd"] == "run" and leaves["k8s container driftd"] == "run"
    assert leaves["compose migrate"] == "upgrade" and leaves["k8s container migrate"] == "upgrade"
    assert leaves["systemd ExecStartPre (commented)"] == "upgrade"
    for where, args in lines.items():
        assert args[args.index("--config") + 1] == CONFIG_PATH, where


@pytest.mark.parametrize("name", ["examples/driftd.yaml", "deploy/compose/driftd.yaml",
                                  "deploy/k8s/configmap.yaml (driftd.yaml)"])
def test_shipped_configurations_load_and_build_their_connectors(name: str, tmp_path: Path) -> None:
    path = _shipped_configs(tmp_path)[name]
    environ = _dummy_environment(path.read_text(encoding="utf-8"))
    config = load_config(path, environ)
    assert config.storage.url.startswith("postgresql+psycopg://"), f"{name}: production storage is PostgreSQL"
    assert config.server.port == PORT
    assert config.monitors, f"{name} has no monitor"
    plugins = PluginManager(environ={}, load_entry_points=False)
    connectors = plugins.provided["connectors"]
    for monitor in config.monitors:
        assert monitor.source.type in connectors, f"{name}: monitor {monitor.name}: unknown connector"
        _measures, connector = MonitorRunner.validate(monitor, plugins)  # what `driftd config validate` does
        connector.close()
        make_trigger(monitor.schedule)


def test_the_example_shows_files_and_sql_monitors_with_secrets_from_the_environment() -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    config = load_config(EXAMPLE_CONFIG, _dummy_environment(text))
    assert {m.source.type for m in config.monitors} == {"files", "sql"}
    assert "url: ${DRIFTD_STORAGE_URL}" in text
    assert config.server.host == "127.0.0.1", "the example keeps driftd's loopback default"
    assert text.count("\n#") + text.count("  # ") >= 15, "the example explains itself"


# ---- systemd ----------------------------------------------------------------------------------

def test_systemd_unit_is_hardened() -> None:
    service = _service()
    single = {key: values[-1] for key, values in service.items()}
    expected = {
        "Restart": "on-failure",
        "StateDirectory": "driftd",
        "WorkingDirectory": STATE_DIR,
        "ConfigurationDirectory": "driftd",
        "EnvironmentFile": "-/etc/driftd/driftd.env",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "KillSignal": "SIGTERM",
    }
    for key, value in expected.items():
        assert single.get(key) == value, f"{key}={single.get(key)!r}, expected {value!r}"
    assert single.get("DynamicUser") == "yes" or single.get("User") not in (None, "root", "0")
    assert set(single["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service["SystemCallFilter"][0] == "@system-service"
    # WorkingDirectory is the state directory, so the default sqlite:///driftd.db lands there.
    assert f"/var/lib/{single['StateDirectory']}" == single["WorkingDirectory"]
    assert PurePosixPath(CONFIG_PATH).parent == PurePosixPath("/etc") / single["ConfigurationDirectory"]
    # Long enough for the tick in flight to finish after SIGTERM.
    timeout = single["TimeoutStopSec"]
    seconds = int(timeout[:-3]) * 60 if timeout.endswith("min") else int(timeout.rstrip("s"))
    assert seconds >= 60
    assert unit_sections()["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_unit_reads_as_ini() -> None:
    # Independent of systemd: the file is a plain INI document with the three usual sections.
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    assert parser.sections() == ["Unit", "Service", "Install"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian: apt-get install systemd); "
                           "the unit is still checked by the parser tests above")
def test_systemd_analyze_verify_accepts_the_unit() -> None:
    result = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    ours = [line for line in output.splitlines() if "driftd.service" in line]
    assert not ours, "systemd-analyze warns about the unit:\n" + "\n".join(ours)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_security_rates_the_unit_ok() -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    if "--offline" in result.stderr and ("unrecognized" in result.stderr or "Unknown" in result.stderr):
        pytest.skip("this systemd-analyze cannot rate a unit file offline (systemd < 250)")
    # Exposure above 2.0 ("OK" ends there) fails: something in the hardening went missing.
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


# ---- the container image ----------------------------------------------------------------------

def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    stages = dockerfile_stages()
    global_args = {kw_args.split("=", 1)[0]: kw_args.split("=", 1)[1]
                   for kw, kw_args in stages[0] if kw == "ARG" and "=" in kw_args}
    bases = []
    for stage in stages[1:]:
        image = stage[0][1].split()[0]
        bases.append(re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], image))
    assert len(stages) - 1 >= 2, "a build stage and a runtime stage"
    assert set(bases) == {"python:3.11-slim"}
    assert stages[1][0][1].split()[-2:] == ["AS", "build"]
    build_stage = " ".join(args for _, args in stages[1])
    assert "pip wheel" in build_stage
    final = _final_stage()
    runs = " ".join(args for kw, args in final if kw == "RUN")
    assert "from=build" in runs and "--no-index" in runs, "the runtime stage installs the built wheels only"
    assert not [args for kw, args in final if kw == "COPY"], "no sources are copied into the runtime stage"

    user = _one(final, "USER").split(":")[0]
    assert user not in ("root", "0") and user.isdigit(), "a numeric non-root user (runAsNonRoot can check it)"
    assert str(_pod_spec()["securityContext"]["runAsUser"]) == user

    env = {}
    for kw, args in final:
        if kw == "ENV":
            env.update(_env_pairs(args))
    assert env["DRIFTD_SERVER_HOST"] == "0.0.0.0", "the container's network namespace is the boundary"
    assert "DRIFTD_SERVER_PORT" not in env, "a port in the image would silently override the config file"
    assert ServerConfig().host == "127.0.0.1", "driftd's own default stays loopback"
    volume = _one(final, "VOLUME")
    assert (json.loads(volume) if volume.startswith("[") else volume.split()) == [STATE_DIR]
    assert _one(final, "WORKDIR") == STATE_DIR
    assert json.loads(_one(final, "ENTRYPOINT")) == ["driftd"]
    assert json.loads(_one(final, "CMD")) == ["run", "--config", CONFIG_PATH]
    assert _one(final, "STOPSIGNAL") == "SIGTERM"


def test_dockerfile_exposes_the_default_port() -> None:
    assert PORT == 9108
    exposed = [args for kw, args in _final_stage() if kw == "EXPOSE"]
    assert exposed == [str(PORT)]
    health = " ".join(_healthcheck_command())
    assert f"'{PORT}'" in health, "the health check falls back to the default port"


def test_dockerfile_copies_what_the_wheel_build_needs() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    copied = set()
    for kw, args in dockerfile_stages()[1]:
        if kw == "COPY":
            *sources, _target = args.split()
            copied.update(source.rstrip("/") for source in sources if not source.startswith("--"))
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
    assert "pyproject.toml" in copied and project["project"]["readme"] in copied
    setuptools = project["tool"]["setuptools"]
    mapped = setuptools.get("package-dir", {})
    folders = {mapped.get(package, package.replace(".", "/")).split("/")[0] for package in setuptools["packages"]}
    assert folders <= copied
    ignored = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    assert "**/.venv" in ignored and "**/.git" in ignored
    assert not copied & {pattern.strip("*/") for pattern in ignored}, "the ignore file hides a copied path"


def test_dockerfile_healthcheck_command_passes_against_driftd(monkeypatch: pytest.MonkeyPatch) -> None:
    command = _healthcheck_command()
    assert command[:2] == ["python", "-c"], "slim has no curl: the health check uses python"
    server = HttpServer(create_app(Metrics(), lambda: []), "127.0.0.1", 0)
    server.start()
    try:
        environ = {**os.environ, "DRIFTD_SERVER_PORT": str(server.port)}
        ok = subprocess.run([sys.executable, *command[1:]], env=environ, capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr.decode()
    finally:
        server.stop()
    down = subprocess.run([sys.executable, *command[1:]], env=environ, capture_output=True, timeout=30)
    assert down.returncode != 0, "the health check must fail when driftd does not answer"


# ---- compose ----------------------------------------------------------------------------------

def test_compose_has_the_stack_and_orders_migration_before_the_daemon() -> None:
    services = compose_services()
    assert {"driftd", "migrate", "postgres", "prometheus", "grafana"} <= set(services)
    assert services["postgres"]["healthcheck"]["test"]
    driftd = services["driftd"]
    assert driftd["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert driftd["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["image"] == driftd["image"], "the migration runs the same image"
    assert services["migrate"].get("restart") == "no"


def test_compose_builds_the_dockerfile_from_the_repository_root() -> None:
    for name in ("driftd", "migrate"):
        build = compose_services()[name]["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name


def test_compose_ports_and_targets_use_9108() -> None:
    services = compose_services()
    assert f"127.0.0.1:{PORT}:{PORT}" in services["driftd"]["ports"], "published on loopback, default port"
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} beyond the host"
    prometheus = _docs(COMPOSE_PROMETHEUS)[0]
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    targets = [t for sc in jobs[JOB]["static_configs"] for t in sc["targets"]]
    assert targets == [f"driftd:{PORT}"], "the compose service name and driftd's port"


def test_compose_mounts_exist_and_land_where_their_consumers_look() -> None:
    services = compose_services()
    for name, service in services.items():
        for source, _target in _bind_mounts(service):
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"compose {name} mounts {source}, which does not exist"

    def target_of(service: str, source: str) -> str:
        mounts = dict(_bind_mounts(services[service]))
        assert source in mounts, f"compose {service} does not mount {source}"
        return mounts[source]

    for name in ("driftd", "migrate"):
        assert target_of(name, "./driftd.yaml") == CONFIG_PATH
    # Prometheus: its config and driftd's rules side by side, as rule_files names them.
    config_target = PurePosixPath(target_of("prometheus", "./prometheus.yml"))
    rules_target = PurePosixPath(target_of("prometheus", "../prometheus/driftd-rules.yml"))
    assert (COMPOSE_DIR / "../prometheus/driftd-rules.yml").resolve() == RULES
    assert _docs(COMPOSE_PROMETHEUS)[0]["rule_files"] == [rules_target.name]
    assert rules_target.parent == config_target.parent
    assert f"--config.file={config_target}" in services["prometheus"]["command"]
    # Grafana: provisioning and dashboards where the provisioning files expect them.
    assert target_of("grafana", "../grafana/provisioning") == "/etc/grafana/provisioning"
    provider = _docs(GRAFANA / "provisioning" / "dashboards" / "driftd.yml")[0]["providers"][0]
    assert target_of("grafana", "../grafana/dashboards") == provider["options"]["path"]
    datasource = _docs(GRAFANA / "provisioning" / "datasources" / "driftd.yml")[0]["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090", "the datasource reaches the `prometheus` service"
    assert any(str(p).endswith(":9090") for p in services["prometheus"]["ports"])


def test_compose_storage_url_points_at_the_postgres_service() -> None:
    services = compose_services()
    postgres = {k: _compose_value(str(v)) for k, v in services["postgres"]["environment"].items()}
    for name in ("driftd", "migrate"):
        url = _compose_value(services[name]["environment"]["DRIFTD_STORAGE_URL"])
        expected = (f"postgresql+psycopg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
                    f"@postgres:5432/{postgres['POSTGRES_DB']}")
        assert url == expected, name
    config = load_config(COMPOSE_DIR / "driftd.yaml",
                         {"DRIFTD_STORAGE_URL": _compose_value(services["driftd"]["environment"]["DRIFTD_STORAGE_URL"])})
    assert config.storage.url.endswith("@postgres:5432/driftd")


# ---- Kubernetes -------------------------------------------------------------------------------

def test_k8s_deployment_is_single_scheduler() -> None:
    spec = _deployment()["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert "Single-scheduler" in (K8S / "deployment.yaml").read_text(encoding="utf-8"), "explain Recreate"
    assert _pod_spec()["terminationGracePeriodSeconds"] >= 60


def test_k8s_labels_and_selectors_match() -> None:
    objects = k8s_objects()
    deployment = _deployment()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = _service_object()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = objects[("ServiceMonitor", "driftd")]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
    # The rules and dashboards select job="driftd".
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == JOB
    namespaces = {obj["metadata"].get("namespace") for (kind, _), obj in objects.items() if kind != "Namespace"}
    assert namespaces == {"driftd"} and ("Namespace", "driftd") in objects
    assert _kustomization()["namespace"] == "driftd"


def test_k8s_ports_are_9108_and_named_consistently() -> None:
    container = _main_container()
    (port,) = container["ports"]
    assert port["containerPort"] == PORT
    (service_port,) = _service_object()["spec"]["ports"]
    assert service_port["port"] == PORT
    assert service_port["targetPort"] == port["name"]
    monitor = k8s_objects()[("ServiceMonitor", "driftd")]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [service_port["name"]]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], PORT), probe
    assert load_config_text(_configmap_config()).server.port == PORT


def load_config_text(text: str):  # noqa: ANN201 - a DriftdConfig
    from monitor.config import build_config
    return build_config(yaml.safe_load(text), "configmap", _dummy_environment(text))


def test_k8s_config_and_secret_references_resolve() -> None:
    objects = k8s_objects()
    spec = _pod_spec()
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    configmap = objects[("ConfigMap", volumes["config"]["configMap"]["name"])]
    for item in volumes["config"]["configMap"].get("items", []):
        assert item["key"] in configmap["data"]
    secret = objects[("Secret", "driftd")]
    assert secret["metadata"]["name"] == "driftd"
    for container in _containers():
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert set(mounts) <= set(volumes), container["name"]
        assert mounts["config"] == str(PurePosixPath(CONFIG_PATH).parent), container["name"]
        assert mounts["state"] == STATE_DIR and "tmp" in mounts, "writable paths under a read-only root"
        environ = {}
        for variable in container["env"]:
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                secret_ref = objects[("Secret", ref["name"])]
                assert ref["key"] in secret_ref["stringData"], f"{container['name']}: {ref}"
            environ[variable["name"]] = variable.get("value", "from-secret")
        # Every ${VAR} without a default in driftd.yaml is set in the container.
        for name, default in env_references(configmap["data"]["driftd.yaml"]):
            assert default or name in environ, f"{container['name']}: ${{{name}}} is not set"
    # The Secret example is a shape only: it is not applied with the kustomization.
    assert "secret.example.yaml" not in _kustomization()["resources"]


def test_k8s_probes_resources_and_security() -> None:
    spec = _pod_spec()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec.get("automountServiceAccountToken") is False
    container = _main_container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for each in _containers():
        context = each["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, each["name"]
        assert context["allowPrivilegeEscalation"] is False, each["name"]
        assert context["capabilities"]["drop"] == ["ALL"], each["name"]
        assert each["resources"]["requests"] and each["resources"]["limits"]["memory"], each["name"]
    (migrate,) = spec["initContainers"]
    assert migrate["args"][:2] == ["db", "upgrade"]
    assert migrate["image"] == container["image"]


def test_k8s_kustomization_lists_existing_manifests() -> None:
    kustomization = _kustomization()
    listed = set(kustomization["resources"])
    for resource in listed:
        assert (K8S / resource).is_file(), resource
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == manifests, "every manifest but the secret example is applied"
    images = {image["name"] for image in kustomization["images"]}
    assert {c["image"].split(":")[0] for c in _containers()} <= images


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_manifests() -> None:
    result = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and "kustomize" in result.stderr and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == ["ConfigMap", "Deployment", "Namespace", "Service", "ServiceMonitor"]
    (deployment,) = [doc for doc in rendered if doc["kind"] == "Deployment"]
    new_name = _kustomization()["images"][0]["newName"]
    for container in [*deployment["spec"]["template"]["spec"]["initContainers"],
                      *deployment["spec"]["template"]["spec"]["containers"]]:
        assert container["image"].startswith(new_name + ":"), container["image"]
