"""`make run` after the data root changed: the DAG's Asset (the published CSV under the data root)
gets a new URI under the same name. Without a scheduler nobody orphans the old pair, and
`airflow dags test` would fail recommend on an inactive asset; scripts/refresh_assets.py (run by
the Makefile when the data root changed) does the scheduler's pass.

In a child process with its own Airflow home: the conflicting asset must not leak into the
database the other suites share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support import ROOT

CHILD = r"""
import json, sys
from airflow.utils.db import initdb
from airflow.utils.session import create_session
from airflow.models.asset import AssetActive, AssetModel
from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
from sqlalchemy import select

initdb()
# What the database holds after `make run` with another data root: the same name, the old URI, active.
with create_session() as session:
    session.add(AssetModel(name="musicrec_recommended_songs", uri="file:///old/root/published/recommended_songs.csv"))
    session.add(AssetActive(name="musicrec_recommended_songs", uri="file:///old/root/published/recommended_songs.csv"))
from airflow.dag_processing.bundles.manager import DagBundlesManager
DagBundlesManager().sync_bundles_to_db()
bag = DagBag(dag_folder=sys.argv[1])
sync_bag_to_db(bag, "dags-folder", None)  # what `airflow dags reserialize` and `dags test` do

def active():
    with create_session() as session:
        return sorted(session.execute(select(AssetActive.uri).where(AssetActive.name == "musicrec_recommended_songs")).scalars())

before = active()
if sys.argv[2] == "refresh":
    sys.path.insert(0, sys.argv[3])
    from refresh_assets import refresh_assets
    refresh_assets()
print(json.dumps({"before": before, "after": active()}))
"""


def run_child(tmp_path, action: str) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "MUSICREC_DATA_ROOT": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "spark_jobs")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT / "dags"), action, str(ROOT / "scripts")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_refresh_activates_the_asset_of_the_new_data_root(tmp_path):
    ours = f"file://{tmp_path / 'data'}/published/recommended_songs.csv"
    got = run_child(tmp_path, "refresh")
    assert got["before"] == ["file:///old/root/published/recommended_songs.csv"]  # the failure make run would hit
    assert got["after"] == [ours]
