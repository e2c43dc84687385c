"""Test set-up: a private Airflow home and data root, the project's folders on sys.path, one
local SparkSession per test session, and a local HTTP server for downloads.

Environment is set before anything imports airflow, so nothing touches ~/airflow.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from support import ROOT, shared_dataset  # noqa: E402,F401  (tests import these from support)
_SCRATCH = Path(tempfile.mkdtemp(prefix="musicrec-tests-"))

os.environ["AIRFLOW_HOME"] = str(_SCRATCH / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW_CONN_SPARK_DEFAULT"] = '{"conn_type": "spark", "host": "local[2]"}'
os.environ["MUSICREC_DATA_ROOT"] = str(_SCRATCH / "data")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYSPARK_PYTHON"] = sys.executable  # Python workers use this venv, not PATH's python3

# Python workers import the library as jobs' executors do from --py-files.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "spark_jobs"), os.environ.get("PYTHONPATH")]))
logging.getLogger("py4j").setLevel(logging.WARNING)  # it logs to closed streams at exit

for folder in (ROOT / "spark_jobs", ROOT / "plugins"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(scope="session")
def spark():
    from musicrec.spark_config import SPARK_CONF
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("musicrec-tests")
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    session = builder.config("spark.sql.shuffle.partitions", "2").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(_SCRATCH / "checkpoints"))
    yield session
    session.stop()


@pytest.fixture
def data_root() -> Path:
    return Path(os.environ["MUSICREC_DATA_ROOT"])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """serve(folder) -> base URL of a static server on 127.0.0.1 (supports no Range)."""
    servers = []

    def serve(folder: Path, handler=None) -> str:
        handler = handler or functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
