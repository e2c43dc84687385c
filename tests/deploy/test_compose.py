"""docker-compose.yaml, checked through `docker-compose config` (needs no Docker engine).

The file is rendered with dummy secrets in a clean environment (a developer's own .env and
exported variables are ignored), and the rendered services are checked: healthchecks, restart
policies, start order, one data volume at one path, the env files, the shared secrets, ports on
127.0.0.1 only. Also: a missing secret stops compose with its name, and the file holds no secret.
Without docker-compose the compose tests skip; with MUSICREC_REQUIRE_DEPLOY_TOOLS=1 (CI) they fail.
No Airflow import: this runs in a second.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
REQUIRE_ENV = "MUSICREC_REQUIRE_DEPLOY_TOOLS"

# Every variable docker-compose.yaml requires from .env, with a recognisable dummy value.
REQUIRED = {
    "POSTGRES_PASSWORD": "dummy-postgres-password",
    "AIRFLOW_ADMIN_PASSWORD": "dummy-admin-password",
    "AIRFLOW_JWT_SECRET": "dummy-jwt-secret",
    "AIRFLOW_API_SECRET_KEY": "dummy-api-secret-key",
    "AIRFLOW_FERNET_KEY": "dummy-fernet-key",
}
OPTIONAL = ("AIRFLOW_UID", "MUSICREC_DATA_DIR")
TEST_UID = "4321"  # not the image's 50000: the file must pass AIRFLOW_UID through

AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
SPARK_WORKERS = ("spark-worker-1", "spark-worker-2")
SPARK_SERVICES = ("spark-master", *SPARK_WORKERS)
LONG_RUNNING = ("postgres", *AIRFLOW_SERVICES, *SPARK_SERVICES)
DATA_PATH = "/opt/musicrec/data"
LOGS_PATH = "/opt/airflow/logs"
SECRETS_PATH = "/opt/airflow/secrets"


def read_env_file(name: str) -> dict[str, str]:
    """deploy/<name>, read literally (KEY=VALUE lines; no quotes, no expansion), as compose reads it."""
    values = {}
    for line in (ROOT / "deploy" / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


AIRFLOW_ENV = read_env_file("airflow.env")
SPARK_ENV = read_env_file("spark.env")


# --- running `docker-compose config` -----------------------------------------------------------


def compose_command() -> list[str] | None:
    """docker-compose (v1, Debian's), else the `docker compose` plugin (v2), else None."""
    if exe := shutil.which("docker-compose"):
        return [exe]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        reason = "docker-compose is not installed (Debian: apt-get install docker-compose)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)
    return command


def run_config(compose: list[str], tmp_dir: Path, **variables: str | None) -> subprocess.CompletedProcess:
    """`config` with REQUIRED set to dummies, updated by `variables` (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k not in (*REQUIRED, *OPTIONAL) and not k.startswith("COMPOSE_")}
    env.update(REQUIRED)
    for key, value in variables.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    empty_env_file = tmp_dir / "empty.env"  # instead of the project's .env
    empty_env_file.write_text("")
    argv = [*compose, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "--project-directory", str(ROOT), "config"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def render(compose: list[str], tmp_dir: Path, **variables: str | None) -> dict:
    done = run_config(compose, tmp_dir, **variables)
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    return yaml.safe_load(done.stdout)["services"]


@pytest.fixture(scope="module")
def services(compose, tmp_path_factory) -> dict:
    return render(compose, tmp_path_factory.mktemp("compose"), AIRFLOW_UID=TEST_UID)


# --- the rendered shapes of compose v1 and v2, normalised ----------------------------------------


def mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """{container path: (source, read_only)}; v1 renders "src:dst:mode", v2 a mapping."""
    result = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            result[target] = (source, "ro" in ",".join(mode).split(","))
        else:
            result[volume["target"]] = (volume.get("source", ""), bool(volume.get("read_only")))
    return result


def ports(service: dict) -> list[tuple[str, str, str]]:
    """[(host IP, published port, container port)]; v1 renders "ip:pub:target/proto", v2 a mapping."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, str):
            parts = port.split("/")[0].split(":")
            parts = [""] * (3 - len(parts)) + parts
            result.append((parts[0], parts[1], parts[2]))
        else:
            result.append((port.get("host_ip", ""), str(port.get("published", "")), str(port["target"])))
    return result


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


# --- services, health, restarts, start order -----------------------------------------------------


def test_expected_services(services):
    assert {"postgres", "airflow-init", *AIRFLOW_SERVICES, *SPARK_SERVICES} <= set(services)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_healthcheck_and_restart(services, name):
    service = services[name]
    check = service.get("healthcheck") or {}
    assert check.get("test") and not check.get("disable") and check["test"] != ["NONE"], f"{name}: no healthcheck"
    assert service.get("restart") == "always", f"{name}: restart is {service.get('restart')!r}"


def test_init_runs_once(services):
    assert services["airflow-init"].get("restart", "no") == "no", "a restarting airflow-init would loop"


def test_healthchecks_probe_each_service(services):
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert re.search(r"curl .*localhost:8080/api/v2/(version|monitor/health)", healthcheck_text(services["airflow-apiserver"]))
    assert "localhost:8974/health" in healthcheck_text(services["airflow-scheduler"])
    assert AIRFLOW_ENV["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"].lower() == "true", "the scheduler's :8974 health server"
    for name, job_type in (("airflow-dag-processor", "DagProcessorJob"), ("airflow-triggerer", "TriggererJob")):
        text = healthcheck_text(services[name])
        assert f"airflow jobs check --job-type {job_type}" in text and "--hostname" in text, name
    # The Spark web UIs, on the ports deploy/spark.env gives them.
    assert f"localhost:{SPARK_ENV['SPARK_MASTER_WEBUI_PORT']}/" in healthcheck_text(services["spark-master"])
    for name in SPARK_WORKERS:
        assert f"localhost:{SPARK_ENV['SPARK_WORKER_WEBUI_PORT']}/" in healthcheck_text(services[name]), name


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_wait_for_postgres_and_init(services, name):
    deps = depends_on(services[name])
    assert deps.get("postgres") == "service_healthy", name
    assert deps.get("airflow-init") == "service_completed_successfully", name
    assert "spark-master" not in deps, "Spark is needed at task time only, not to start Airflow"


def test_init_waits_for_postgres(services):
    assert depends_on(services["airflow-init"]).get("postgres") == "service_healthy"


@pytest.mark.parametrize("name", SPARK_WORKERS)
def test_workers_wait_for_a_healthy_master(services, name):
    assert depends_on(services[name]).get("spark-master") == "service_healthy"


# --- image, users, commands -----------------------------------------------------------------------


def test_one_image_for_airflow_and_spark(services):
    images = {name: services[name].get("image") for name in ("airflow-init", *AIRFLOW_SERVICES, *SPARK_SERVICES)}
    assert len(set(images.values())) == 1 and None not in images.values(), images
    for name in images:
        build = services[name].get("build") or {}
        context = build if isinstance(build, str) else build.get("context")
        assert Path(context).resolve() == ROOT, f"{name} builds {context}"


def test_users_follow_airflow_uid(services, compose, tmp_path):
    for name in (*AIRFLOW_SERVICES, *SPARK_SERVICES):
        assert services[name]["user"] == f"{TEST_UID}:0", name
    init = services["airflow-init"]
    assert init["user"] == "0:0", "airflow-init runs as root to chown the volumes"
    assert environment(init)["AIRFLOW_UID"] == TEST_UID, "airflow-init chowns to AIRFLOW_UID"
    default = render(compose, tmp_path)  # AIRFLOW_UID unset
    assert default["airflow-scheduler"]["user"] == "50000:0"
    assert environment(default["airflow-init"])["AIRFLOW_UID"] == "50000"


@pytest.mark.parametrize("name", (*AIRFLOW_SERVICES, *SPARK_SERVICES))
def test_image_entrypoint_is_kept(services, name):
    """The image's /entrypoint adds a passwd entry for an arbitrary UID (Hadoop's login needs it)."""
    assert not services[name].get("entrypoint"), f"{name} overrides the image's entrypoint"


def test_spark_daemons_run_through_the_entrypoint(services):
    master = services["spark-master"]
    # /entrypoint exec's a command whose first word is `bash` as it is.
    assert master["command"][0] == "bash"
    assert "bin/spark-class" in command_text(master) and "org.apache.spark.deploy.master.Master" in command_text(master)
    for name in SPARK_WORKERS:
        worker = services[name]
        assert worker["command"][0] == "bash", name
        text = command_text(worker)
        assert "org.apache.spark.deploy.worker.Worker" in text, name
        assert f"spark://spark-master:{SPARK_ENV['SPARK_MASTER_PORT']}" in text, name
    for name in SPARK_SERVICES:  # the entrypoint must not wait for Airflow's database
        assert environment(services[name]).get("CONNECTION_CHECK_MAX_COUNT") == "0", name


def test_airflow_commands(services):
    expected = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}
    for name, command in expected.items():
        assert command_text(services[name]).split()[-1] == command, name


def test_init_prepares_everything(services):
    init = services["airflow-init"]
    script = command_text(init)
    assert "airflow db migrate" in script
    assert 'airflow pools set musicrec_spark 1 "one Spark job at a time on the cluster"' in script
    assert "airflow pools get musicrec_spark" in script  # created once, an operator's change kept
    assert "AIRFLOW_ADMIN_PASSWORD" in script and "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    assert environment(init)["AIRFLOW_ADMIN_PASSWORD"] == REQUIRED["AIRFLOW_ADMIN_PASSWORD"]
    commands = script.replace("\\\n", " ").splitlines()  # continuation lines joined
    chowned = " ".join(line for line in commands if line.strip().startswith("chown "))
    init_mounts = mounts(init)
    work_mounts = [path for path, (source, _) in init_mounts.items()
                   if source in {mounts(services[w])[SPARK_ENV["SPARK_WORKER_DIR"]][0] for w in SPARK_WORKERS}]
    assert len(work_mounts) == len(SPARK_WORKERS), "airflow-init must mount every worker's work dir"
    for path in (DATA_PATH, LOGS_PATH, SECRETS_PATH, *work_mounts):
        assert path in chowned, f"airflow-init does not chown {path}"
        assert path in init_mounts, f"airflow-init does not mount {path}"


# --- volumes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("data_dir", [None, "./data"])
def test_one_data_volume_at_one_path(services, compose, tmp_path, data_dir):
    rendered = services if data_dir is None else render(compose, tmp_path, MUSICREC_DATA_DIR=data_dir)
    sources = {}
    for name in ("airflow-init", *AIRFLOW_SERVICES, *SPARK_SERVICES):
        service_mounts = mounts(rendered[name])
        assert DATA_PATH in service_mounts, f"{name} does not mount the data root at {DATA_PATH}"
        source, read_only = service_mounts[DATA_PATH]
        assert not read_only, name
        sources[name] = source
    assert len(set(sources.values())) == 1, f"different data volumes: {sources}"
    if data_dir is not None:
        assert Path(next(iter(sources.values()))) == ROOT / "data"
    assert AIRFLOW_ENV["MUSICREC_DATA_ROOT"] == DATA_PATH


def test_logs_and_secrets_volumes_shared_by_airflow(services):
    for path in (LOGS_PATH, SECRETS_PATH):
        sources = {name: mounts(services[name]).get(path) for name in ("airflow-init", *AIRFLOW_SERVICES)}
        assert None not in sources.values(), f"{path} is not mounted everywhere: {sources}"
        assert len(set(sources.values())) == 1, sources
        assert not next(iter(sources.values()))[1], f"{path} must be writable"
    assert AIRFLOW_ENV["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == LOGS_PATH
    passwords_file = AIRFLOW_ENV["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert passwords_file.startswith(SECRETS_PATH + "/"), "the passwords file must be on the secrets volume"


def test_each_worker_has_its_own_work_dir_volume(services):
    work_dir = SPARK_ENV["SPARK_WORKER_DIR"]
    assert "site-packages" not in work_dir
    sources = {}
    for name in SPARK_WORKERS:
        assert work_dir in mounts(services[name]), f"{name}: SPARK_WORKER_DIR {work_dir} is not a volume"
        sources[name] = mounts(services[name])[work_dir][0]
    assert len(set(sources.values())) == len(SPARK_WORKERS), sources


@pytest.mark.parametrize("name", ("airflow-init", *AIRFLOW_SERVICES))
def test_code_mounted_read_only_from_the_repo(services, name):
    service_mounts = mounts(services[name])
    for folder in ("dags", "plugins", "spark_jobs"):
        target = f"/opt/musicrec/{folder}"
        assert target in service_mounts, f"{name}: {folder} not mounted"
        source, read_only = service_mounts[target]
        assert Path(source) == ROOT / folder and read_only, f"{name}: {target} <- {source} (read-only: {read_only})"
    assert AIRFLOW_ENV["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/musicrec/dags"
    assert AIRFLOW_ENV["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/musicrec/plugins"


# --- environment and secrets -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ("airflow-init", *AIRFLOW_SERVICES))
def test_airflow_env_file_loaded(services, name):
    env = environment(services[name])
    differs = {key: env.get(key) for key, value in AIRFLOW_ENV.items() if env.get(key) != value}
    assert not differs, f"{name} does not get deploy/airflow.env as written: {differs}"


@pytest.mark.parametrize("name", SPARK_SERVICES)
def test_spark_env_file_loaded(services, name):
    env = environment(services[name])
    differs = {key: env.get(key) for key, value in SPARK_ENV.items() if env.get(key) != value}
    assert not differs, f"{name} does not get deploy/spark.env as written: {differs}"
    leaked = {key for key in env if "SECRET" in key or "PASSWORD" in key or "FERNET" in key or "SQL_ALCHEMY" in key}
    assert not leaked, f"{name} gets Airflow's secrets: {leaked}"


def test_secrets_are_the_same_in_every_airflow_service(services):
    expected = {
        "AIRFLOW__API_AUTH__JWT_SECRET": REQUIRED["AIRFLOW_JWT_SECRET"],
        "AIRFLOW__API__SECRET_KEY": REQUIRED["AIRFLOW_API_SECRET_KEY"],
        "AIRFLOW__CORE__FERNET_KEY": REQUIRED["AIRFLOW_FERNET_KEY"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
            f"postgresql+psycopg2://airflow:{REQUIRED['POSTGRES_PASSWORD']}@postgres/airflow",
    }
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        env = environment(services[name])
        assert {key: env.get(key) for key in expected} == expected, name
        if name != "airflow-init":
            assert "AIRFLOW_ADMIN_PASSWORD" not in env, f"{name} does not need the admin password"
    assert environment(services["postgres"])["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"]
    assert AIRFLOW_ENV["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_ports_only_on_localhost(services):
    published = {}
    for name, service in services.items():
        for host_ip, host_port, container_port in ports(service):
            assert host_ip == "127.0.0.1", f"{name} publishes {host_port}:{container_port} on {host_ip or 'all interfaces'}"
            assert host_port not in published, f"host port {host_port}: {published.get(host_port)} and {name}"
            published[host_port] = name
    container_ports = {name: {p[2] for p in ports(services[name])} for name in services}
    assert "8080" in container_ports["airflow-apiserver"]
    assert SPARK_ENV["SPARK_MASTER_WEBUI_PORT"] in container_ports["spark-master"]
    for name in SPARK_WORKERS:
        assert SPARK_ENV["SPARK_WORKER_WEBUI_PORT"] in container_ports[name], name


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_missing_required_variable_stops_compose(compose, tmp_path, variable):
    for value in (None, ""):  # unset, or left empty as in .env.example
        done = run_config(compose, tmp_path, **{variable: value})
        assert done.returncode != 0, f"docker-compose config succeeded without {variable} ({value!r})"
        assert variable in done.stderr + done.stdout, f"the error does not name {variable}: {done.stderr}"


# --- the files themselves (no docker-compose needed) -------------------------------------------------


def test_env_example_declares_every_required_variable():
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text()))
    assert required == set(REQUIRED), "REQUIRED in this test is out of date"
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"^\w+=", line):
            key, _, value = line.partition("=")
            example[key] = value
    assert required | {"AIRFLOW_UID"} <= set(example), f"missing from .env.example: {required - set(example)}"
    assert example["AIRFLOW_UID"] == "50000"


# ${VAR} or ${VAR:?message} (compose, from .env) or $${VAR} (the container's own); not
# ${VAR:-default}, whose default would be a literal.
REFERENCE = r"\$?\$\{\w+(:?\?[^}]*)?\}"


def test_no_secret_literal_in_compose_file():
    """Every password/secret/key value is a ${...} reference to .env, including the database URL's."""
    secret_key = re.compile(r"^\s*-?\s*[\"']?([A-Za-z0-9_]*(PASSWORD|SECRET|FERNET|TOKEN|_KEY)[A-Za-z0-9_]*)[\"']?\s*[:=]\s*(.*)$", re.I)
    offenders = []
    for number, line in enumerate(COMPOSE_FILE.read_text().splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        if match := secret_key.match(line):
            value = match.group(3).split(" #")[0].strip().strip("\"'")
            if value and not re.fullmatch(REFERENCE, value):
                offenders.append(f"line {number}: {line.strip()}")
        for password in re.findall(r"\w+://[^:/\s\"']+:([^@\s\"']+)@", line):
            if not re.fullmatch(REFERENCE, password):
                offenders.append(f"line {number}: {line.strip()}")
    assert not offenders, "secret literals in docker-compose.yaml:\n" + "\n".join(offenders)


def test_dockerfile_matches_requirements():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    dockerfile = "\n".join(line for line in lines if not line.lstrip().startswith("#"))  # instructions only
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", (ROOT / "requirements.txt").read_text(), re.M))
    base = re.search(r"apache/airflow:(?:slim-)?([0-9.]+)-python", dockerfile)
    assert base and base.group(1) == pins["apache-airflow"], "the base image's Airflow differs from requirements.txt"
    assert f"pyspark=={pins['pyspark']}" in dockerfile, "the pyspark reinstall differs from requirements.txt"
    assert "-r /opt/musicrec/requirements.txt -c /opt/musicrec/constraints.txt" in dockerfile
    assert "requirements-test" not in dockerfile and "pytest" not in dockerfile
    assert "pip check" in dockerfile and "openjdk-17-jre-headless" in dockerfile and "JAVA_HOME" in dockerfile


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".venv", ".git", "data", ".airflow"} <= ignored
