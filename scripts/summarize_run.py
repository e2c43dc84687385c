"""Print a short summary of the latest music_recommendation run from Airflow's metadata DB.

Used by `make run` after `airflow dags test`; reads task states, durations and XComs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
from musicrec_operators import DAG_ID  # noqa: E402  (the DAG's own source of its ID)

TASKS = ("download", "extract", "preprocess", "train", "evaluate", "recommend")


def load_run(run_id: str | None = None, since: float = 0.0):
    """((run_id, state), {task: (state, seconds, try number)}, {task: XCom result}) of `run_id` or the latest run."""
    from sqlalchemy import select

    from airflow.models import DagRun, TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == DAG_ID)
        if run_id is not None:
            query = query.where(DagRun.run_id == run_id)
        run = session.scalars(query.order_by(DagRun.id.desc()).limit(1)).first()
        if run is None or (run.start_date and run.start_date.timestamp() < since):
            return None, {}, {}
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run.run_id)
        ).all()
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == DAG_ID, XComModel.run_id == run.run_id, XComModel.key == "return_value"
            )
        ).all()
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        states = {ti.task_id: (str(ti.state), ti.duration, ti.try_number) for ti in tis}
        return (run.run_id, str(run.state)), states, xcoms


def main() -> int:
    since = float(sys.argv[sys.argv.index("--since") + 1]) if "--since" in sys.argv else 0.0
    run, states, xcoms = load_run(since=since)
    if run is None:
        print("no new run of music_recommendation was recorded: see the log above")
        return 1
    run_id, state = run
    pre, tr, ev, rec = (xcoms.get(task, {}) for task in ("preprocess", "train", "evaluate", "recommend"))
    print(f"\n== music_recommendation run {run_id}: {state}")
    if pre:
        print(f"dataset      {xcoms['download']['source_url']} ({pre['dataset_format']}, {pre['feedback']})")
        print(f"rows kept    {pre['rows_kept']} of {pre['rows_read']} (rejected: {pre.get('rejected_by_reason') or 'none'})")
        print(f"users/songs  {pre['users']} / {pre['songs']}")
    if tr:
        split, params = tr["split"], tr["params"]
        print(f"split        {split['kind']}, test_fraction {split['test_fraction']}, seed {split['seed']} "
              f"({tr['train_rows']} train / {tr['test_rows']} test rows)")
        tuned = " (chosen by tune)" if tr.get("tuning") else ""
        print(f"ALS          rank {params['rank']}, reg_param {params['reg_param']}, max_iter {params['max_iter']}"
              + (f", alpha {params['alpha']}" if params["feedback"] == "implicit" else "") + tuned
              + ("; recommending from the refit on all interactions" if tr.get("refit") else ""))
    if ev:
        name = ev["headline_metric"]
        champion = f"  vs  champion {ev['champion_score']:.4f}" if ev.get("champion_score") is not None else ""
        print(f"{name:<12} model {ev['model_score']:.4f}  vs  baseline {ev['baseline_score']:.4f}{champion}")
        gate = ev["gate"]
        print(f"gate         {gate['decision']}" + (f": {'; '.join(gate['reasons'])}" if gate["reasons"] else ""))
        for warning in gate.get("warnings", []):
            print(f"WARNING      {warning}")
    report = ev.get("report_path") or _report_of(run_id)
    if report:
        print(f"report       {report}")
    print("task         state      seconds  (spark-submit start-up share)")
    for task in TASKS:
        task_state, duration, _ = states.get(task, ("-", None, 0))
        facts = xcoms.get(task, {})
        share = ""
        if facts.get("task_seconds"):
            share = f"({facts['startup_seconds'] / facts['task_seconds']:.0%})"
        seconds = f"{duration:8.1f}" if duration is not None else "       -"
        print(f"{task:<12} {task_state:<10} {seconds}  {share}")
    if rec and rec.get("published", True):
        print(f"CSV          {rec['published_csv_path']}  ({rec['rows']} rows, {rec['users']} users)")
    elif rec:  # e.g. a backfilled older date: its CSV stays in its run folder
        print(f"CSV          {rec['csv_path']}  ({rec['rows']} rows, {rec['users']} users; not published: "
              f"{rec.get('publication')})")
    return 0 if state == "success" else 1


def _report_of(run_id: str) -> str | None:
    """A run that evaluate refused has no XCom, but its report is in the run folder."""
    from musicrec import paths  # on sys.path since musicrec_operators

    report = paths.report_path(paths.data_root(), run_id)
    return str(report) if report.exists() else None


if __name__ == "__main__":
    sys.exit(main())
