"""The deployment, started for real on this machine: PostgreSQL, Airflow's api-server, scheduler
and dag-processor (LocalExecutor), and a Spark standalone master with two workers.

Settings come from deploy/airflow.env and deploy/spark.env, the files docker-compose.yaml loads;
only what differs between a container and this machine is overridden here (MACHINE_OVERRIDES:
paths, addresses, ports, and the secrets compose takes from .env).

Where the tests run as root and `ip netns` works, the Spark workers live in their own network
namespace behind a veth pair, so executors reach the driver over a real network address, as on a
cluster. Otherwise everything listens on 127.0.0.1. Every process is stopped by its PID.
"""

from __future__ import annotations

import functools
import glob
import http.server
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from names import BACKFILL_DAYS, BIN, DAG_ID, DEPLOY, POOL, ROOT, SAMPLE
from processes import Processes, free_port, missing, wait_for


# The settings of deploy/airflow.env that name container paths, hosts or ports. Everything else
# in the env files is used exactly as docker compose uses it.
MACHINE_OVERRIDES = (
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__PLUGINS_FOLDER",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
    "AIRFLOW_CONN_SPARK_DEFAULT",
    "MUSICREC_DATA_ROOT",
    "MUSICREC_SPARK_CONF",  # plus spark.driver.host: the address executors call back on
)


def env_file(name: str) -> dict[str, str]:
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(DEPLOY / name, interpolate=False).items() if value is not None}


def clean_env() -> dict[str, str]:
    """This process's environment without the test session's own Airflow/Spark settings."""
    prefixes = ("AIRFLOW", "MUSICREC", "PYSPARK", "SPARK", "PYTHONPATH")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


@pytest.fixture(scope="session")
def processes():
    folder = Path(tempfile.mkdtemp(prefix="musicrec-deploy-logs-"))
    procs = Processes(folder)
    yield procs
    procs.stop_all()
    print(f"\ndeployment logs: {folder}")
    # SIGKILLed children may take a moment to be gone.
    wait_for("every started process to be gone", lambda: not procs.leftovers(), timeout=15)


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = Path(found[-1]) if found else (Path(shutil.which("initdb")) if shutil.which("initdb") else None)
    if initdb is None:
        missing("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return initdb.parent


@pytest.fixture(scope="session")
def postgres(processes):
    """A PostgreSQL server in a temporary folder on 127.0.0.1; yields its SQLAlchemy URL."""
    pg = postgres_bin()
    as_user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
    folder = Path(tempfile.mkdtemp(prefix="musicrec-pg-"))
    password = secrets.token_urlsafe(16)
    (folder / "pw").write_text(password)
    if as_user:  # initdb refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(folder / "pw", "postgres", "postgres")
    data = folder / "data"
    subprocess.run(
        [pg / "initdb", "-D", data, "-U", "airflow", f"--pwfile={folder / 'pw'}", "--auth=scram-sha-256", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120, **as_user,
    )
    port = free_port()
    processes.start("postgres", [str(pg / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(folder)], clean_env(), **as_user)
    import psycopg2

    def create_db():
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="airflow", password=password, dbname="postgres")
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            conn.cursor().execute("CREATE DATABASE airflow")
        finally:
            conn.close()
        return True

    wait_for("PostgreSQL", create_db, timeout=30, log=processes.log("postgres"))
    yield f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{port}/airflow"
    processes.stop("postgres", signal=signal.SIGINT)  # "fast" shutdown: ends sessions, then stops
    shutil.rmtree(folder, ignore_errors=True)


# --- Spark standalone ---------------------------------------------------------------------------


@dataclass
class SparkCluster:
    master_url: str
    driver_host: str  # the address executors use to reach a driver on this machine
    web_url: str
    workers: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)  # name: (argv, env)
    netns: str | None = None

    def status(self) -> dict:
        return requests.get(f"{self.web_url}/json/", timeout=5).json()

    def alive_workers(self) -> int:
        return sum(1 for w in self.status()["workers"] if w["state"] == "ALIVE")

    def start_worker(self, processes: Processes, name: str) -> None:
        argv, env = self.workers[name]
        processes.start(name, argv, env)


def _netns_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    probe = f"mrprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return made


def _make_netns() -> tuple[str, str, str, str]:
    """A namespace joined to this one by a veth pair: (namespace, host veth, host IP, namespace IP)."""
    tag = os.getpid() % 100000
    ns, host_if, ns_if = f"mr{tag}", f"mrh{tag}", f"mrw{tag}"
    subnet = f"10.213.{tag % 250 + 1}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # a crashed earlier session's
    subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    for argv in (
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        ["ip", "link", "set", ns_if, "netns", ns],
        ["ip", "addr", "add", f"{subnet}.1/24", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{subnet}.2/24", "dev", ns_if],
        ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
    ):
        try:
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
        except (subprocess.SubprocessError, OSError):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            subprocess.run(["ip", "link", "del", host_if], capture_output=True)
            raise
    return ns, host_if, f"{subnet}.1", f"{subnet}.2"


@pytest.fixture(scope="session")
def spark_cluster(processes):
    """A Spark master and two workers from the pyspark package, configured by deploy/spark.env."""
    import importlib.util

    spark_home = Path(importlib.util.find_spec("pyspark").submodule_search_locations[0])
    spark_class = str(spark_home / "bin" / "spark-class")
    work = Path(tempfile.mkdtemp(prefix="musicrec-spark-"))
    netns = host_if = None
    try:
        if _netns_works():
            netns, host_if, master_host, worker_host = _make_netns()
        else:
            master_host = worker_host = "127.0.0.1"
        settings = env_file("spark.env")
        base = {**clean_env(), **settings, "SPARK_HOME": str(spark_home), "SPARK_LOG_DIR": str(work / "logs")}
        master_port = free_port(master_host)
        web_port = free_port(master_host)
        processes.start(
            "spark-master",
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", master_host],
            {**base, "SPARK_LOCAL_IP": master_host, "SPARK_MASTER_PORT": str(master_port), "SPARK_MASTER_WEBUI_PORT": str(web_port)},
        )
        cluster = SparkCluster(f"spark://{master_host}:{master_port}", master_host, f"http://{master_host}:{web_port}", netns=netns)
        wait_for("the Spark master", lambda: cluster.status()["status"] == "ALIVE", timeout=180, log=processes.log("spark-master"))
        for i in (1, 2):
            name = f"spark-worker-{i}"
            worker_web = str(8080 + i) if netns else str(free_port())  # a namespace has its own ports
            argv = [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", worker_host, cluster.master_url]
            if netns:
                argv = ["ip", "netns", "exec", netns, *argv]
            env = {**base, "SPARK_LOCAL_IP": worker_host, "SPARK_WORKER_DIR": str(work / name), "SPARK_WORKER_WEBUI_PORT": worker_web}
            cluster.workers[name] = (argv, env)
            cluster.start_worker(processes, name)
        wait_for("two Spark workers", lambda: cluster.alive_workers() == 2, timeout=180, log=processes.log("spark-worker-2"))
        yield cluster
    finally:  # also when start-up failed half-way: no daemon, namespace or veth is left behind
        for name in ("spark-worker-1", "spark-worker-2", "spark-master"):
            processes.stop(name)
        if netns:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
            subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=30)
        shutil.rmtree(work, ignore_errors=True)


# --- Airflow ------------------------------------------------------------------------------------


class AirflowApi:
    """REST API v2 of the api-server, with the simple auth manager's token."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        self.username, self.password = username, password
        self.session = requests.Session()

    def login(self) -> None:
        reply = requests.post(f"{self.base_url}/auth/token", json={"username": self.username, "password": self.password}, timeout=10)
        reply.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)

    def json(self, method: str, path: str, **kwargs):
        reply = self.call(method, path, **kwargs)
        assert reply.ok, f"{method} {path}: HTTP {reply.status_code} {reply.text[:500]}"
        return reply.json()

    def trigger(self, conf: dict, logical_date: str | None = None) -> str:
        run = self.json("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": logical_date, "conf": conf})
        return run["dag_run_id"]

    def run(self, run_id: str) -> dict:
        return self.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")

    def task_states(self, run_id: str) -> dict[str, str]:
        tis = self.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def xcom(self, run_id: str, task_id: str) -> dict:
        entry = self.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) else value

    def wait_run(self, run_id: str, timeout: float = 600) -> str:
        def finished():
            state = self.run(run_id)["state"]
            return state if state in ("success", "failed") else None

        try:
            return wait_for(f"run {run_id} to finish", finished, timeout=timeout, every=2)
        except AssertionError as error:
            raise AssertionError(f"{error}\ntask states: {self.task_states(run_id)}") from None


@dataclass
class Deployment:
    api: AirflowApi
    env: dict[str, str]
    data_root: Path
    spark: SparkCluster
    processes: Processes
    scheduler_argv: list[str]

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """The airflow CLI with the deployment's settings."""
        return subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def start_scheduler(self) -> None:
        self.processes.start("airflow-scheduler", self.scheduler_argv, self.env)

    def task_log(self, run_id: str, task_id: str) -> str:
        folder = Path(self.env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob(f"dag_id={DAG_ID}/run_id={run_id}/task_id={task_id}/*.log")))


@pytest.fixture(scope="session")
def deployment(processes, postgres, spark_cluster):
    """Airflow's api-server, scheduler and dag-processor on the Postgres, with the DAG unpaused."""
    home = Path(tempfile.mkdtemp(prefix="musicrec-airflow-"))
    api_port = free_port()
    password = secrets.token_urlsafe(12)
    (home / "secrets").mkdir()
    passwords_file = home / "secrets" / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps({"admin": password}))
    settings = env_file("airflow.env")
    spark_conf = {**json.loads(settings["MUSICREC_SPARK_CONF"]), "spark.driver.host": spark_cluster.driver_host}
    env = {
        **clean_env(),
        **settings,
        # MACHINE_OVERRIDES: container paths and hosts become this machine's.
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW_CONN_SPARK_DEFAULT": spark_cluster.master_url,
        "MUSICREC_DATA_ROOT": str(home / "data"),
        "MUSICREC_SPARK_CONF": json.dumps(spark_conf),
        # What compose takes from .env.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        # Where this machine's processes listen.
        "AIRFLOW_HOME": str(home / "home"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "SPARK_LOCAL_IP": spark_cluster.driver_host,  # the driver binds where executors can reach it
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    assert set(MACHINE_OVERRIDES) <= set(settings), "deploy/airflow.env lost a setting the tests override"
    deploy = Deployment(
        AirflowApi(f"http://127.0.0.1:{api_port}", "admin", password), env, home / "data", spark_cluster, processes,
        [str(BIN / "airflow"), "scheduler", "--skip-serve-logs"],
    )
    for argv in (["db", "migrate"], ["pools", "set", POOL, "1", "one Spark job at a time on the cluster"]):
        done = deploy.airflow(*argv, timeout=300)
        assert done.returncode == 0, f"airflow {' '.join(argv)}: {done.stderr[-2000:]}"
    processes.start("airflow-api-server", [str(BIN / "airflow"), "api-server"], env)
    processes.start("airflow-dag-processor", [str(BIN / "airflow"), "dag-processor"], env)
    deploy.start_scheduler()
    wait_for("the api-server", lambda: requests.get(f"{deploy.api.base_url}/api/v2/monitor/health", timeout=5).ok,
             timeout=120, log=processes.log("airflow-api-server"))
    deploy.api.login()

    def dag_parsed():
        reply = deploy.api.call("GET", f"/dags/{DAG_ID}")
        return reply.ok

    wait_for("the dag-processor to parse the DAG", dag_parsed, timeout=180, every=2, log=processes.log("airflow-dag-processor"))
    errors = deploy.api.json("GET", "/importErrors")
    assert errors["total_entries"] == 0, errors
    deploy.api.json("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    yield deploy
    print("\nresident memory at the end of the deployment suite:\n" + processes.memory_report())
    for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-api-server"):
        processes.stop(name)
    shutil.rmtree(home, ignore_errors=True)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# --- Dated snapshots over HTTP -----------------------------------------------------------------


def small_snapshot(path: Path, every: int, offset: int) -> Path:
    """A MovieLens-layout zip with one user in `every` of the sample's: a quick DAG run."""
    with zipfile.ZipFile(SAMPLE) as source:
        names = source.namelist()
        ratings_name = next(n for n in names if n.endswith("ratings.csv"))
        songs_name = next(n for n in names if n.endswith("songs.csv"))
        lines = source.read(ratings_name).decode().splitlines()
        kept = [lines[0]] + [line for line in lines[1:] if int(line.split(",")[0]) % every == offset]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            target.writestr("snapshot/ratings.csv", "\n".join(kept) + "\n")
            target.writestr("snapshot/songs.csv", source.read(songs_name))
    return path


@pytest.fixture(scope="session")
def snapshot_server(tmp_path_factory):
    """Dated snapshots served over HTTP on 127.0.0.1, as a data provider publishes them nightly."""
    folder = tmp_path_factory.mktemp("snapshots")
    for offset, day in enumerate(BACKFILL_DAYS):
        small_snapshot(folder / f"plays-{day}.zip", every=8, offset=offset)
    small_snapshot(folder / "small.zip", every=6, offset=5)
    # The UI test's own dataset: its run is that dataset's first, whatever the REST test's rank did
    # to small.zip's champion (the quality gate compares runs of the same dataset).
    small_snapshot(folder / "ui-small.zip", every=6, offset=5)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
