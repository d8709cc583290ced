"""docker/Dockerfile and docker/compose.yaml, checked statically.

No Docker daemon or registry is reachable where the tests run, so nothing here
builds or starts a container: the files are parsed and held against the code
(settings, CLI, topic declarations) and against each other (ports, names, mounts).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream_app.app import internal_topic_specs
from stream_app.cli import MODEL_COMMANDS, build_parser
from stream_app.kafka.admin import topic_specs
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PROMETHEUS: dict[str, Any] = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (DOCKER / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in dockerfile_instructions():
        if word == "ENV":
            env.update(kv.split("=", 1) for kv in shlex.split(rest))
    return env


def dockerfile_args() -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in dockerfile_instructions() if word == "ARG")


def service_env(name: str) -> dict[str, str]:
    env = SERVICES[name].get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    # A key without a value passes the shell's value through, or nothing: not set here.
    return {k: str(v) for k, v in env.items() if v is not None}


def streamrec_services() -> list[str]:
    return [n for n, s in SERVICES.items() if s.get("image", "").startswith("streamrec")]


def worker_settings() -> Settings:
    return Settings.from_env({**dockerfile_env(), **service_env("worker")})


def test_every_streamrec_variable_is_a_setting_with_a_valid_value() -> None:
    sources = {"Dockerfile": dockerfile_env()} | {n: service_env(n) for n in SERVICES}
    for where, env in sources.items():
        ours = {k: v for k, v in env.items() if k.startswith("STREAMREC_")}
        unknown = [k for k in ours if k[len("STREAMREC_") :].lower() not in Settings.model_fields]
        assert not unknown, f"{where} sets variables streamrec does not read: {unknown}"
        Settings.from_env({**dockerfile_env(), **ours})  # raises on a bad value


def test_service_commands_exist_in_the_cli() -> None:
    commands = {n: SERVICES[n]["command"] for n in streamrec_services()}
    cmd = next(rest for word, rest in dockerfile_instructions() if word == "CMD")
    commands["Dockerfile CMD"] = yaml.safe_load(cmd)  # exec form is a JSON list
    assert "worker" in commands
    for where, argv in commands.items():
        assert isinstance(argv, list), f"{where}: use the exec (list) form"
        if argv[0] in MODEL_COMMANDS:
            continue
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `streamrec {shlex.join(argv)}` is not a valid command")


def test_the_image_runs_the_streamrec_cli_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    base = next(rest for word, rest in instructions if word == "FROM")
    assert base.startswith("python:") and "slim" in base
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    entry = yaml.safe_load(next(rest for word, rest in instructions if word == "ENTRYPOINT"))
    copies = [rest.split() for word, rest in instructions if word == "COPY"]
    for *sources, _ in copies:
        for src in sources:
            assert (ROOT / src).exists(), f"COPY source {src} is missing"
    (script,) = [c[0] for c in copies if c[-1].endswith("/" + entry[0])]
    assert re.search(r'^exec streamrec "\$@"$', (ROOT / script).read_text(), re.M)


def test_torch_is_the_pinned_version_cpu_by_default_cuda_by_build_arg() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch=="))
    args = dockerfile_args()
    assert f"torch=={args['TORCH_VERSION']}" == pin
    assert args["TORCH_INDEX"] == "cpu"
    run = " ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
    assert "download.pytorch.org/whl/${TORCH_INDEX}" in run
    assert SERVICES["worker"]["build"]["args"]["TORCH_INDEX"] in ("cpu", "${TORCH_INDEX:-cpu}")


def test_kafka_is_the_official_kraft_image_and_workers_reach_its_listener() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    env = service_env("kafka")
    assert "controller" in env["KAFKA_PROCESS_ROLES"]  # KRaft: no ZooKeeper
    advertised = dict(
        reversed(a.split("://", 1)) for a in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    listeners = {
        name: addr.rsplit(":", 1)[1]
        for name, addr in (a.split("://", 1) for a in env["KAFKA_LISTENERS"].split(","))
    }
    for name in streamrec_services():
        bootstrap = Settings.from_env(service_env(name)).bootstrap
        assert bootstrap in advertised, f"{name}: {bootstrap} is no advertised listener"
        host, port = bootstrap.rsplit(":", 1)
        assert host == "kafka" and listeners[advertised[bootstrap]] == port


def test_the_topic_service_creates_every_topic_as_the_worker_declares_it() -> None:
    script = SERVICES["topics"]["command"][0]
    created: dict[str, tuple[int, dict[str, str]]] = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if words[:1] != ["create"]:
            continue
        opts: dict[str, Any] = {"--config": {}}
        for flag, value in zip(words[1::2], words[2::2], strict=True):
            if flag == "--config":
                key, _, val = value.partition("=")
                opts["--config"][key] = val
            else:
                opts[flag] = value
        created[opts["--topic"]] = (int(opts["--partitions"]), opts["--config"])
    s = worker_settings()
    expected = {
        t.name: (t.num_partitions, dict(t.topic_configs))
        for t in topic_specs(s) + internal_topic_specs(s)
    }
    assert created == expected
    assert SERVICES["worker"]["depends_on"]["topics"]["condition"] == (
        "service_completed_successfully"
    )


def test_workers_scale_and_prometheus_discovers_each_replica() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    s = worker_settings()
    assert s.metrics_host == "0.0.0.0" and str(s.metrics_port) in worker["expose"]
    assert str(s.web_port) in worker["expose"]
    # Left unset: each replica advertises its own address (docker/entrypoint.sh).
    assert "STREAMREC_WEB_HOST" not in service_env("worker")
    (job,) = [j for j in PROMETHEUS["scrape_configs"] if j["job_name"] == "streamrec"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == s.metrics_port
    mounts = SERVICES["prometheus"]["volumes"]
    assert any(v.split(":")[1] == "/etc/prometheus/prometheus.yml" for v in mounts)


def test_every_mounted_file_is_in_the_repo() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            src = volume.split(":")[0]
            if not src.startswith("."):
                continue  # a named volume
            if src.startswith("./grafana") and not (DOCKER / "grafana").exists():
                pytest.skip("docker/grafana comes with the metrics branch")
            assert (DOCKER / src).exists(), f"{name} mounts missing {src}"


def test_grafana_reads_the_prometheus_service() -> None:
    datasources = DOCKER / "grafana/provisioning/datasources"
    if not datasources.exists():
        pytest.skip("docker/grafana comes with the metrics branch")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == "./grafana/dashboards"
    urls = [
        ds["url"]
        for f in datasources.glob("*.y*ml")
        for ds in yaml.safe_load(f.read_text()).get("datasources", [])
        if ds.get("type") == "prometheus"
    ]
    assert urls
    paths = [
        provider["options"]["path"]
        for f in (DOCKER / "grafana/provisioning/dashboards").glob("*.y*ml")
        for provider in yaml.safe_load(f.read_text()).get("providers", [])
    ]
    assert paths and all(p in mounts for p in paths)  # dashboards load from the mount
    prometheus_ports = {p.split(":")[-1] for p in SERVICES["prometheus"]["ports"]}
    for url in urls:
        m = re.fullmatch(r"http://([\w-]+):(\d+)/?", url)
        assert m and m[1] == "prometheus" and m[2] in prometheus_ports, url


def test_the_entrypoint_waits_for_kafka_and_gives_up_clearly(tmp_path: Path) -> None:
    """The image's entrypoint, run by ``sh`` here with the venv's ``streamrec`` on the
    PATH: a worker whose broker never answers waits (one line per attempt), then
    exits 69 naming the broker, before the worker itself starts."""
    import os
    import subprocess
    import sys

    from stream_app.harness import free_port, settings_env
    from stream_app.kafka.wait import EXIT_UNAVAILABLE

    closed = f"127.0.0.1:{free_port()}"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        **settings_env(kafka_bootstrap=closed, kafka_wait_s=2, kafka_retry_max_s=1),
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "STREAMREC_DATA_DIR": str(tmp_path),
    }
    run = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == EXIT_UNAVAILABLE, run.stderr
    assert f"waiting for Kafka at {closed}, attempt 1" in run.stderr
    assert f"Kafka at {closed} did not answer within 2 s" in run.stderr
    assert "Worker" not in run.stderr  # the worker never started


def test_the_trainer_publishes_into_the_volume_the_workers_serve_from() -> None:
    trainer, worker = SERVICES["trainer"], SERVICES["worker"]
    assert trainer["profiles"] == ["trainer"] and trainer["command"] == ["trainer"]
    s = Settings.from_env({**dockerfile_env(), **service_env("trainer")})
    assert s.model_dir is not None and s.trainer_versions_dir is not None
    mounts = {v.split(":")[1]: v.split(":") for v in trainer["volumes"]}
    (source, target, *mode) = mounts["/models"]
    assert source in COMPOSE["volumes"] and mode == []  # a named volume, writable
    assert s.model_dir.is_relative_to(target) and s.trainer_versions_dir.is_relative_to(target)
    worker_mounts = [v.split(":") for v in worker["volumes"]]
    assert [source, target, "ro"] in worker_mounts  # the same volume at the same path
    # Workers serve it only when asked (unset: the Markov path, no checkpoint needed).
    assert worker["environment"]["STREAMREC_MODEL_DIR"] is None
    assert worker_settings().model_dir is None
    assert str(s.trainer_metrics_port) in trainer["expose"]
    jobs = {j["job_name"]: j for j in PROMETHEUS["scrape_configs"]}
    sd = jobs["streamrec-trainer"]["dns_sd_configs"][0]
    assert sd["names"] == ["trainer"] and sd["port"] == s.trainer_metrics_port
    assert "/models" in " ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
    entry = (DOCKER / "entrypoint.sh").read_text()
    assert re.search(r"^\s*worker \| trainer \|.*wait-kafka", entry, re.M)
