"""Activate the DAG's assets as Airflow's scheduler would: `make run` has no scheduler.

recommend produces the Asset `musicrec_recommended_songs`, whose URI is the published CSV under
the data root. After $MUSICREC_DATA_ROOT changes, the DAG declares that name with another URI;
Airflow keeps the old pair active until a scheduler orphans it, and `airflow dags test` then fails
recommend ("inactive assets"). The Makefile runs `airflow dags reserialize` (the DAG now
references the new URI) and this script when the data root differs from the last `make run`'s.
"""

from __future__ import annotations


def refresh_assets() -> None:
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session

    # The scheduler's own pass over the assets; it reads nothing of a runner's state.
    runner = SchedulerJobRunner.__new__(SchedulerJobRunner)
    with create_session() as session:
        runner._update_asset_orphanage(session=session)


if __name__ == "__main__":
    refresh_assets()
