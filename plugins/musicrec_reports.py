"""Each run's report in the Airflow UI: a "Quality report" tab on the DAG's run page.

evaluate writes one self-contained HTML report per run (musicrec.report), also when the quality
gate refuses the model, which is when people most want to read it. This plugin serves it from
Airflow's API server (a FastAPI app under /musicrec) to whoever may read the DAG's runs, checked
by Airflow itself (the UI's session cookie or an API token: requires_access_dag), and adds an
external view that shows it as a tab of every run of the DAG. The path is the run's folder under
the data root (musicrec.paths.report_path), so the API server must see the same data root as the
workers (docker-compose mounts it into every service).
"""

from __future__ import annotations

import html
import threading

from airflow.plugins_manager import AirflowPlugin
from musicrec_operators import DAG_ID  # also puts spark_jobs/ (the musicrec library) on sys.path

from musicrec import paths  # noqa: E402

URL_PREFIX = "/musicrec"
VIEW_ROUTE = "musicrec-report"  # the tab's route: /dags/<dag>/runs/<run>/plugin/musicrec-report

# The report carries the same policy in a <meta>; as headers it also covers the 404 pages.
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}

def build_app():
    """The FastAPI app that serves the reports; built on its first request (see LazyApp)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI
    from fastapi.responses import FileResponse

    app = FastAPI(title="musicrec run reports")

    @app.get("/reports/{dag_id}/{run_id}", dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))])
    def run_report(dag_id: str, run_id: str):
        """The report evaluate wrote for `run_id`, or a 404 page that says why there is none."""
        if dag_id != DAG_ID:  # only this DAG's runs write reports (another DAG's run IDs may look alike)
            return _not_found(f"DAG {dag_id} has no musicrec reports: they belong to the runs of {DAG_ID}.")
        try:
            report = paths.report_path(paths.data_root(), run_id)
        except ValueError:
            return _not_found(f"{run_id!r} is not a run ID of {DAG_ID}.")
        if not report.is_file():
            return _not_found(
                f"Run {run_id} has no report yet: its evaluate task writes one when it scores the model (also "
                "when the quality gate refuses it). Wait for evaluate, or read its log."
            )
        return FileResponse(report, media_type="text/html", headers=REPORT_HEADERS)

    return app


def _not_found(text: str):
    from fastapi.responses import HTMLResponse

    page = f'<!DOCTYPE html><html lang="en"><meta charset="utf-8"><p>{html.escape(text)}</p></html>'
    return HTMLResponse(page, 404, headers=REPORT_HEADERS)


class LazyApp:
    """An ASGI app that builds the real one on its first request.

    Airflow imports every plugin in every process that loads plugins, each task's process
    included, but only the API server serves this app: importing Airflow's core API security
    module up front cost each of them ~1 s (measured on this 2-core machine).
    """

    def __init__(self, build):
        self._build, self._app, self._lock = build, None, threading.Lock()

    @property
    def app(self):
        with self._lock:
            if self._app is None:
                self._app = self._build()
        return self._app

    async def __call__(self, scope, receive, send):
        # The first request builds the app on the event loop (~1 s, once per API server process).
        # Airflow runs no lifespan for mounted apps: build_app must not rely on one.
        await self.app(scope, receive, send)


class MusicrecReportsPlugin(AirflowPlugin):
    name = "musicrec_reports"
    fastapi_apps = [{"app": LazyApp(build_app), "url_prefix": URL_PREFIX, "name": "musicrec run reports"}]
    external_views = [{
        "name": "Quality report",
        # Relative: the UI resolves it against Airflow's base URL, so it works behind a path prefix.
        "href": f"{URL_PREFIX.lstrip('/')}/reports/{{DAG_ID}}/{{RUN_ID}}",
        "destination": "dag_run",
        "url_route": VIEW_ROUTE,
    }]
