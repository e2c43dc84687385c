"""A person's path through the Airflow UI, in a real browser (Debian's chromium, headless, driven
by Playwright): log in, open the DAG's trigger form, change `top_n`, trigger, and wait for the
grid to show the run green. Screenshots of the form and the grid are kept as artifacts
(MUSICREC_UI_SCREENSHOTS, default: a temporary folder); docs/ holds copies for the README.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from names import DAG_ID
from processes import missing

pytestmark = pytest.mark.deploy
CHROMIUM = "/usr/bin/chromium"
TOP_N = 3


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(os.environ.get("MUSICREC_UI_SCREENSHOTS") or tempfile.mkdtemp(prefix="musicrec-ui-"))
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nUI screenshots: {folder}")


def test_trigger_from_the_ui_with_a_changed_param(deployment, screenshots, snapshot_server):
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        missing("Chromium is not installed (Debian: apt-get install chromium)")
    from airflow_ui import login, open_browser, open_run_tab, trigger_with_params, wait_for_run_success_in_grid

    api = deployment.api
    base, _ = snapshot_server
    with open_browser() as page:
        login(page, api.base_url, api.username, api.password)
        titles, run_id = trigger_with_params(
            page, api.base_url, DAG_ID, {"top_n": TOP_N, "dataset_url": f"{base}/ui-small.zip"},
            str(screenshots / "trigger-form.png"),
            expect_titles=["Dataset URL", "Songs per user", "ALS rank"],
        )
        assert "Songs per user" in titles and "ALS regularization" in titles, titles
        assert run_id, "the UI did not open the new run's page"
        # The open SPA refreshes itself every few seconds and would take a core from Spark on this
        # 2-core machine: leave it while the run works, then read the run's state from the grid.
        page.goto("about:blank")
        api.wait_run(run_id, timeout=900)
        run_id = wait_for_run_success_in_grid(
            page, api.base_url, DAG_ID, run_id, timeout_s=120, screenshot_path=str(screenshots / "grid.png"),
        )
        # The run's quality report, as a tab of the run page (plugins/musicrec_reports.py).
        report_text = open_run_tab(page, api.base_url, DAG_ID, run_id, "musicrec-report", "Quality report",
                                   str(screenshots / "report-tab.png"))
    assert f"musicrec run {run_id}:" in report_text and "Promotion gate" in report_text, report_text[:500]
    conf = api.run(run_id)["conf"]
    assert conf["top_n"] == TOP_N and conf["dataset_url"] == f"{base}/ui-small.zip"  # the form's values reached the run
    recommend = api.xcom(run_id, "recommend")
    with open(recommend["csv_path"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    per_user: dict[str, int] = {}
    for row in rows:
        per_user[row["user_id"]] = per_user.get(row["user_id"], 0) + 1
    assert rows and set(per_user.values()) == {TOP_N}
    assert (screenshots / "trigger-form.png").stat().st_size > 10_000 and (screenshots / "grid.png").stat().st_size > 10_000
    assert (screenshots / "report-tab.png").stat().st_size > 10_000
    check_report_endpoint(api, run_id)


def check_report_endpoint(api, run_id: str) -> None:
    """The endpoint behind the report tab: Airflow's login is required, and a run without a
    report (or another DAG's run) gets a 404 page that says why."""
    import requests

    assert api.json("GET", "/plugins/importErrors")["total_entries"] == 0
    assert "musicrec_reports" in {plugin["name"] for plugin in api.json("GET", "/plugins")["plugins"]}
    url = f"{api.base_url}/musicrec/reports/{DAG_ID}/{quote(run_id, safe='')}"
    assert requests.get(url, timeout=30).status_code in (401, 403)  # no login, no report
    reply = api.session.get(url, timeout=30)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    assert reply.content == Path(api.xcom(run_id, "evaluate")["report_path"]).read_bytes()
    assert "data:image/png;base64," in reply.text
    missing = api.session.get(f"{api.base_url}/musicrec/reports/{DAG_ID}/manual__no_such_run", timeout=30)
    assert missing.status_code == 404 and "has no report yet" in missing.text
    other = api.session.get(f"{api.base_url}/musicrec/reports/another_dag/{quote(run_id, safe='')}", timeout=30)
    assert other.status_code in (403, 404) and f"musicrec run {run_id}" not in other.text

