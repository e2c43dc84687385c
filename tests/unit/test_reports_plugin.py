"""The report plugin: cheap to import in every Airflow process, and what its app answers.

Its authorization is Airflow's own; tests/deploy/test_ui.py checks it on a real API server. Here
the dependency is overridden to test the pages themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from support import ROOT


def test_importing_the_plugin_leaves_the_api_server_modules_unloaded():
    # Airflow imports every plugin in each task's process; the app's imports wait for a request.
    code = (
        "import sys, json, musicrec_reports; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('fastapi', 'airflow.api_fastapi.core_api')))))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "spark_jobs")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_lazy_app_builds_once_on_the_first_request():
    from musicrec_reports import LazyApp

    built, served = [], []

    def build():
        built.append(1)

        async def app(scope, receive, send):
            served.append(scope["path"])

        return app

    lazy = LazyApp(build)
    assert built == []
    for path in ("/a", "/b"):
        asyncio.run(lazy({"type": "http", "path": path}, None, None))
    assert built == [1] and served == ["/a", "/b"]


@pytest.fixture
def client():
    from fastapi.testclient import TestClient
    from musicrec_reports import build_app

    app = build_app()
    (route,) = [r for r in app.routes if getattr(r, "path", "") == "/reports/{dag_id}/{run_id}"]
    for dependency in route.dependencies:  # Airflow's authorization: tested on a real server
        app.dependency_overrides[dependency.dependency] = lambda: None
    return TestClient(app)


def test_report_pages(client, data_root):
    from musicrec import paths
    from musicrec_operators import DAG_ID

    run_id = "manual__2026-11-26T10:00:00+00:00"
    other_dag = client.get(f"/reports/another_dag/{run_id}")
    assert other_dag.status_code == 404 and f"belong to the runs of {DAG_ID}" in other_dag.text

    missing = client.get(f"/reports/{DAG_ID}/{run_id}")
    assert missing.status_code == 404 and "has no report yet" in missing.text
    assert str(data_root) not in missing.text  # no server path in the page
    assert missing.headers["content-security-policy"].startswith("default-src 'none'")

    report = paths.report_path(data_root, run_id)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("<!DOCTYPE html><p>the report</p>")
    found = client.get(f"/reports/{DAG_ID}/{run_id}")
    assert found.status_code == 200 and found.text == "<!DOCTYPE html><p>the report</p>"
    assert found.headers["x-content-type-options"] == "nosniff"
