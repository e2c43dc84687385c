"""Time the whole DAG with dag.test() and keep the raw results.

    .venv/bin/python bench/run_bench.py                       # sample + ml-latest-small (if present)
    .venv/bin/python bench/run_bench.py --datasets sample --repeat 3
    .venv/bin/python bench/run_bench.py --java-opts=-XX:+UseSerialGC --java-opts="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"

Each variant runs in a fresh Python process (the Spark settings are read at import) with its own
Airflow home and data root. Prints a table and appends every run to bench/results/runs.jsonl.
"x triv" is the DAG time over the median wall time of a trivial spark-submit (bench/trivial_job.py)
timed in the same run: this machine's speed drifts by a quarter or more over a day, the ratio less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
DATASETS = {
    "sample": "",
    "ml-latest-small": (SHARED / "ml-latest-small.zip").as_uri(),
    "ml-100k": (SHARED / "ml-100k.zip").as_uri(),
    "lastfm-2k": (SHARED / "hetrec2011-lastfm-2k.zip").as_uri(),
}
TASKS = ("download", "extract", "preprocess", "train", "evaluate", "recommend")


def run_once(dataset: str, repeat: int) -> list[dict]:
    """In a child process: run the DAG `repeat` times on `dataset`, return one record per run."""
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "spark_jobs"), str(ROOT / "scripts")]
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import initdb

    initdb()
    from summarize_run import load_run

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["music_recommendation"]
    records = []
    for _ in range(repeat):
        started = time.perf_counter()
        dag_run = dag.test(run_conf={"dataset_url": DATASETS[dataset]})
        wall = time.perf_counter() - started
        (_, state), states, xcoms = load_run(dag_run.run_id)
        records.append({
            "dataset": dataset,
            "state": state,
            "dag_seconds": round(wall, 1),
            "task_seconds": {t: round(states[t][1] or 0, 1) for t in TASKS if t in states},
            "startup_seconds": {t: xcoms[t]["startup_seconds"] for t in TASKS if t in xcoms},
            "metric": xcoms.get("evaluate", {}).get("headline_metric"),
            "model": xcoms.get("evaluate", {}).get("model_score"),
            "baseline": xcoms.get("evaluate", {}).get("baseline_score"),
        })
    return records


def time_trivial_submit(env: dict, times: int = 3) -> float:
    """Median wall seconds of bench/trivial_job.py through the same spark-submit the DAG uses."""
    spark_submit = Path(sys.executable).parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "pyspark" / "bin" / "spark-submit"
    sys.path.insert(0, str(ROOT / "spark_jobs"))
    from musicrec.spark_config import SPARK_CONF

    conf = [arg for key, value in {**SPARK_CONF, "spark.pyspark.python": sys.executable}.items() for arg in ("--conf", f"{key}={value}")]
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run([str(spark_submit), "--master", "local[*]", *conf, str(ROOT / "bench" / "trivial_job.py")],
                       env={**env, "PYTHONPATH": str(ROOT / "spark_jobs")}, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
    return sorted(walls)[len(walls) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["sample", "ml-latest-small"], choices=list(DATASETS))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--java-opts", action="append", help="a driver JVM option set to compare (repeatable; use --java-opts=...)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RECORDS " + json.dumps(run_once(args.child, args.repeat)))
        return

    results_file = ROOT / "bench" / "results" / "runs.jsonl"
    rows = []
    for java_opts in args.java_opts or [None]:
        for dataset in args.datasets:
            if DATASETS[dataset] and not Path(DATASETS[dataset][len("file://"):]).exists():
                print(f"skip {dataset}: not present")
                continue
            scratch = Path(tempfile.mkdtemp(prefix="musicrec-bench-"))
            env = {
                **os.environ,
                "AIRFLOW_HOME": str(scratch / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[*]"}',
                "MUSICREC_DATA_ROOT": str(scratch / "data"),
                "SPARK_LOCAL_IP": "127.0.0.1",
            }
            if java_opts is not None:
                env["MUSICREC_DRIVER_JAVA_OPTIONS"] = java_opts
            trivial = time_trivial_submit(env)
            done = subprocess.run(
                [sys.executable, __file__, "--child", dataset, "--repeat", str(args.repeat)],
                env=env, capture_output=True, text=True,
            )
            line = next((l for l in done.stdout.splitlines() if l.startswith("RECORDS ")), None)
            if line is None:
                print(done.stderr[-3000:])
                raise SystemExit(f"benchmark run on {dataset} failed")
            for record in json.loads(line[len("RECORDS "):]):
                record.update(java_opts=java_opts or "(default)", machine=f"{platform.node()} {os.cpu_count()} cpus",
                              trivial_submit_seconds=round(trivial, 2),
                              at=time.strftime("%Y-%m-%dT%H:%M:%S"))
                rows.append(record)
                with open(results_file, "a") as out:
                    out.write(json.dumps(record) + "\n")

    print(f"\n{'dataset':<16} {'java opts':<42} {'DAG s':>6} {'x triv':>6} " + " ".join(f"{t[:7]:>7}" for t in TASKS) + "  metric")
    for r in rows:
        tasks = " ".join(f"{r['task_seconds'].get(t, 0):7.1f}" for t in TASKS)
        startup = sum(r["startup_seconds"].values()) / max(sum(r["task_seconds"].values()), 1e-9)
        ratio = r["dag_seconds"] / r["trivial_submit_seconds"]
        print(f"{r['dataset']:<16} {r['java_opts']:<42} {r['dag_seconds']:6.1f} {ratio:6.1f} {tasks}  "
              f"{r['metric']} {r['model']:.4f} vs {r['baseline']:.4f} (start-up {startup:.0%})")
    print(f"raw results appended to {results_file}")


if __name__ == "__main__":
    main()
