"""Time the whole DAG with dag.test() and keep the raw results.

    .venv/bin/python bench/run_bench.py                       # sample + ml-latest-small (if present)
    .venv/bin/python bench/run_bench.py --datasets sample --repeat 3
    .venv/bin/python bench/run_bench.py --java-opts=-XX:+UseSerialGC --java-opts="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    .venv/bin/python bench/run_bench.py --sizes 1m 5m 25m   # generated data (bench/generate.py); make bench SIZE="1m 5m"

Beside each DAG run, on the same data: the single script (bench/single_script.py, one
spark-submit with Spark's default 4g driver) and the trivial spark-submit. Per task: wall
seconds, start-up seconds, peak RSS of the step's driver JVM (VmHWM, sampled from /proc), rows in
and out. Writes bench/results/latest.md (the table) and, with two sizes or more,
bench/results/time_vs_size.png (seconds against rows per task, with the fitted growth exponent).

Each variant runs in a fresh Python process (the Spark settings are read at import) with its own
Airflow home and data root. Prints a table and appends every run to bench/results/runs.jsonl.
"DAG / trivial" is the DAG time over the median wall time of a trivial spark-submit
(bench/trivial_job.py) with Spark's defaults, timed in the same run: this machine's speed drifts
by a quarter or more over a day, the ratio less. "/ tuned" divides by the same job submitted with
the DAG's own settings (JVM options, class-data-sharing archive), which start it faster.
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
GENERATED = ROOT / "bench" / "data"
SIZE_UNITS = {"k": 1_000, "m": 1_000_000}


def interactions_of(size: str) -> int:
    """"20k" -> 20000, "25m" -> 25000000."""
    text = size.strip().lower()
    return int(float(text[:-1]) * SIZE_UNITS[text[-1]]) if text[-1] in SIZE_UNITS else int(text)


def generated_dataset(size: str, kind: str = "ratings") -> str:
    """The name of a generated dataset of `size` ratings or play counts (made once, kept in bench/data/)."""
    name = f"gen-{size}" + ("-plays" if kind == "plays" else "")
    archive = GENERATED / f"{name}.zip"
    if not archive.exists():
        sys.path.insert(0, str(ROOT / "bench"))
        from generate import generate

        print(generate(archive, interactions_of(size), kind, seed=1))
    DATASETS[name] = archive.as_uri()
    return name


EXTRA_CONF: dict = {}  # --conf: more of the DAG's params for every run


def run_conf(dataset: str) -> dict:
    """The DAG's conf for a dataset. Generated data runs ALS at rank 10, as the single script
    does (the same ALS work per fit); generated play counts are read as implicit feedback."""
    conf = {"dataset_url": DATASETS[dataset]}
    if dataset.startswith("gen-"):
        conf["rank"] = 10
    if dataset.endswith("-plays"):
        conf["feedback"] = "implicit"
    return {**conf, **EXTRA_CONF}


class DriverMemory:
    """Peak RSS (VmHWM) of each step's driver JVM: the spark-submit JVM named musicrec-<step>."""

    def __init__(self):
        import threading

        self.peak_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self):
        while not self._stop.wait(0.5):
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                    if b"org.apache.spark.deploy.SparkSubmit" not in cmdline:
                        continue
                    step = next(arg.decode()[len("musicrec-"):] for arg in cmdline if arg.startswith(b"musicrec-"))
                    status = (proc / "status").read_text()
                except (OSError, StopIteration):
                    continue
                peak = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM")), 0.0)
                self.peak_mb[step] = max(self.peak_mb.get(step, 0.0), peak)


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
        with DriverMemory() as memory:
            dag_run = dag.test(run_conf=run_conf(dataset))
        wall = time.perf_counter() - started
        (_, state), states, xcoms = load_run(dag_run.run_id)
        records.append({
            "dataset": dataset,
            "state": state,
            "dag_seconds": round(wall, 1),
            "task_seconds": {t: round(states[t][1] or 0, 1) for t in TASKS if t in states},
            "startup_seconds": {t: xcoms[t]["startup_seconds"] for t in TASKS if t in xcoms},
            "driver_peak_rss_mb": {t: round(mb) for t, mb in memory.peak_mb.items()},
            "rows": rows_in_and_out(xcoms),
            "run_dir": str(Path(xcoms["train"]["model_path"]).parents[1]) if "train" in xcoms else None,
            "fit_seconds": xcoms.get("train", {}).get("fit_seconds"),
            "als_params": xcoms.get("train", {}).get("params"),
            "metric": xcoms.get("evaluate", {}).get("headline_metric"),
            "model": xcoms.get("evaluate", {}).get("model_score"),
            "baseline": xcoms.get("evaluate", {}).get("baseline_score"),
        })
    return records


def rows_in_and_out(xcoms: dict) -> dict:
    pre, train, rec = xcoms.get("preprocess", {}), xcoms.get("train", {}), xcoms.get("recommend", {})
    return {
        "preprocess": [pre.get("rows_read"), pre.get("rows_kept")],
        "train": [pre.get("rows_kept"), train.get("train_rows")],
        "evaluate": [train.get("test_rows"), None],
        "recommend": [pre.get("users"), rec.get("rows")],
    }


SPARK_SUBMIT = Path(sys.executable).parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "pyspark" / "bin" / "spark-submit"


def conf_args(settings: dict) -> list[str]:
    """{"spark.a": "1"} -> ["--conf", "spark.a=1"]: spark-submit's form of Spark settings."""
    return [arg for key, value in settings.items() for arg in ("--conf", f"{key}={value}")]


def time_recommend_baselines(env: dict, run_dir: Path, rows: int | None) -> dict:
    """bench/recommend_baselines.py on the run's saved model: Spark's top-N against the project's,
    with the Spark settings the recommend step had for this many interactions."""
    sys.path.insert(0, str(ROOT / "spark_jobs"))
    from musicrec.spark_config import SPARK_CONF, sized_conf

    conf = conf_args({**SPARK_CONF, **sized_conf(rows), "spark.pyspark.python": sys.executable})
    done = subprocess.run(
        [str(SPARK_SUBMIT), "--master", "local[*]", *conf, "--py-files", str(run_dir / "lib" / "musicrec.zip"),
         str(ROOT / "bench" / "recommend_baselines.py"), "--model", str(run_dir / "train" / "model"),
         "--interactions", str(run_dir / "preprocess" / "interactions")],
        env={**env, "PYTHONPATH": str(ROOT / "spark_jobs")}, capture_output=True, text=True,
    )
    line = next((l for l in done.stdout.splitlines() if l.startswith("BASELINES ")), None)
    return json.loads(line[len("BASELINES "):]) if line else {"error": first_error(done.stderr)}


def time_implicit_library(run_dir: Path, params: dict) -> dict:
    """bench/implicit_baseline.py on the run's train split, with the train step's ALS params."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "implicit_baseline.py"), "--train", str(run_dir / "train" / "train"),
         "--rank", str(params["rank"]), "--reg-param", str(params["reg_param"]),
         "--iterations", str(params["max_iter"]), "--alpha", str(params["alpha"])],
        capture_output=True, text=True,
    )
    line = next((l for l in done.stdout.splitlines() if l.startswith("IMPLICIT ")), None)
    return json.loads(line[len("IMPLICIT "):]) if line else {"error": first_error(done.stderr)}


def first_error(stderr: str) -> str:
    """The line that says what went wrong, not the last lines of Spark's INFO log."""
    lines = stderr.splitlines()
    return next((l for l in reversed(lines) if "Error" in l or "Exception" in l), "\n".join(lines[-5:]))[:1000]


def time_single_script(env: dict, archive_uri: str, implicit: bool = False) -> dict:
    """bench/single_script.py on the same archive, in one spark-submit with Spark's defaults."""
    import zipfile

    folder = Path(tempfile.mkdtemp(prefix="single-"))
    path = Path(archive_uri[len("file://"):]) if archive_uri else ROOT / "spark_jobs" / "musicrec" / "sample_data" / "music-sample.zip"
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder)
    ratings = next(folder.rglob("ratings.csv")).parent
    started = time.perf_counter()
    done = subprocess.run(
        [str(SPARK_SUBMIT), "--master", "local[*]", "--driver-memory", "4g", "--conf", "spark.ui.enabled=false",
         "--conf", f"spark.pyspark.python={sys.executable}", str(ROOT / "bench" / "single_script.py"),
         "--ratings", str(ratings), "--out", str(folder / "out"), *(["--implicit"] if implicit else [])],
        env=env, capture_output=True, text=True,
    )
    wall = time.perf_counter() - started
    line = next((l for l in done.stdout.splitlines() if l.startswith("PHASES ")), None)
    if line is None:  # keep the DAG's figures; say why this one is missing
        error = first_error(done.stderr)
        print(f"the single script failed: {error}")
        return {"wall_seconds": None, "error": error}
    return {"wall_seconds": round(wall, 1), **json.loads(line[len("PHASES "):])}


def time_trivial_submit(env: dict, times: int = 3, tuned: bool = False) -> float:
    """Median wall seconds of bench/trivial_job.py, with Spark's defaults (the machine's yardstick)
    or `tuned`: through the same settings the DAG uses (its JVM options and class archive)."""
    spark_submit = SPARK_SUBMIT
    sys.path.insert(0, str(ROOT / "spark_jobs"))
    from musicrec.spark_config import SPARK_CONF

    conf = conf_args({**(SPARK_CONF if tuned else {}), "spark.pyspark.python": sys.executable})
    walls = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run([str(spark_submit), "--master", "local[*]", *conf, str(ROOT / "bench" / "trivial_job.py")],
                       env={**env, "PYTHONPATH": str(ROOT / "spark_jobs")}, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
    return sorted(walls)[len(walls) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=None, choices=list(DATASETS))
    parser.add_argument("--sizes", nargs="+", default=[], help="generated sizes, e.g. 20k 1m 5m 25m")
    parser.add_argument("--kind", choices=["ratings", "plays"], default="ratings", help="what --sizes generates")
    parser.add_argument("--no-single-script", action="store_true", help="skip the single-script baseline")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"), help="folder for runs.jsonl, latest.md, the plot")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--java-opts", action="append", help="a driver JVM option set to compare (repeatable; use --java-opts=...)")
    parser.add_argument("--conf", type=json.loads, default={}, help='more DAG params as JSON, e.g. \'{"refit": false}\'')
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    EXTRA_CONF.update(args.conf)
    if args.child:
        if args.child.startswith("gen-"):
            size = args.child[len("gen-"):]
            generated_dataset(size.removesuffix("-plays"), "plays" if size.endswith("-plays") else "ratings")
        print("RECORDS " + json.dumps(run_once(args.child, args.repeat)))
        return

    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    results_file = results / "runs.jsonl"
    datasets = (args.datasets or ([] if args.sizes else ["sample", "ml-latest-small"])) + [generated_dataset(size, args.kind) for size in args.sizes]
    rows = []
    for java_opts in args.java_opts or [None]:
        for dataset in datasets:
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
            trivial, trivial_tuned = time_trivial_submit(env), time_trivial_submit(env, tuned=True)
            done = subprocess.run(
                [sys.executable, __file__, "--child", dataset, "--repeat", str(args.repeat), "--conf", json.dumps(args.conf)],
                env=env, capture_output=True, text=True,
            )
            line = next((l for l in done.stdout.splitlines() if l.startswith("RECORDS ")), None)
            if line is None:
                print(done.stderr[-3000:])
                raise SystemExit(f"benchmark run on {dataset} failed")
            single = None if args.no_single_script else time_single_script(env, DATASETS[dataset], dataset.endswith("-plays"))
            for record in json.loads(line[len("RECORDS "):]):
                if dataset.startswith("gen-") and record.get("run_dir"):  # the same saved model and data
                    kept = (record.get("rows") or {}).get("train", [None])[0]  # preprocess's rows_kept
                    record["recommend_baselines"] = time_recommend_baselines(env, Path(record["run_dir"]), kept)
                    if dataset.endswith("-plays"):
                        record["implicit_library"] = time_implicit_library(Path(record["run_dir"]), record["als_params"])
                record.update(java_opts=java_opts or "(default)", conf=run_conf(dataset), machine=f"{platform.node()} {os.cpu_count()} cpus",
                              trivial_submit_seconds=round(trivial, 2), trivial_tuned_seconds=round(trivial_tuned, 2),
                              single_script=single,
                              interactions=(record.get("rows") or {}).get("preprocess", [None])[0],
                              at=time.strftime("%Y-%m-%dT%H:%M:%S"))
                rows.append(record)
                with open(results_file, "a") as out:
                    out.write(json.dumps(record) + "\n")

    table = markdown_table(rows) + baselines_table(rows)
    (results / "latest.md").write_text(table + "\n")
    print("\n" + table)
    if len({r["interactions"] for r in rows}) >= 2:
        print(f"plot: {plot_time_against_size(rows, results / 'time_vs_size.png')}")
    print(f"raw results appended to {results_file}; table in {results / 'latest.md'}")


def markdown_table(rows: list[dict]) -> str:
    """One line per DAG run: DAG and single-script seconds, their ratio, the trivial-submit ratio,
    then per task: seconds (start-up seconds, driver peak RSS MB)."""
    head = "| data | rows | DAG s | single script s | DAG / single | DAG / trivial (/ tuned) | " + " | ".join(TASKS) + " | metric |"
    lines = [head, "|" + "---|" * (7 + len(TASKS))]
    for r in rows:
        single = (r.get("single_script") or {}).get("wall_seconds")
        cells = []
        for task in TASKS:
            seconds, startup = r["task_seconds"].get(task, 0), r["startup_seconds"].get(task, 0)
            rss = r.get("driver_peak_rss_mb", {}).get(task)
            cells.append(f"{seconds:.1f} ({startup:.1f}" + (f", {rss} MB)" if rss else ")"))
        ratio = f"{r['dag_seconds'] / single:.2f}x" if single else "-"
        tuned = f" ({r['dag_seconds'] / r['trivial_tuned_seconds']:.1f}x)" if r.get("trivial_tuned_seconds") else ""
        metric = f"{r['metric']} {r['model']:.4f} vs {r['baseline']:.4f}" if r.get("model") is not None else r["state"]
        lines.append(f"| {r['dataset']} | {r.get('interactions') or '-'} | {r['dag_seconds']:.1f} | {single or '-'} | {ratio} | "
                     f"{r['dag_seconds'] / r['trivial_submit_seconds']:.1f}x{tuned} | " + " | ".join(cells) + f" | {metric} |")
    return "\n".join(lines)


def baselines_table(rows: list[dict]) -> str:
    """Spark's recommendForAllUsers against the project's top-N on the same model, and implicit's
    ALS per iteration against the train step's."""
    lines = []
    for r in rows:
        base = r.get("recommend_baselines") or {}
        # The step's own top-N: read from the files where the run has it (recorded from 2026-11-28 on).
        ours = next((name for name in ("top_n_unseen_in_files", "top_n_unseen") if name in base), None)
        if ours:
            spark_alone = base["recommendForAllUsers"]["seconds"]
            lines.append(
                f"| {r['dataset']} | recommend step {r['task_seconds'].get('recommend', 0):.1f} s; {ours} alone "
                f"{base[ours]['seconds']:.1f} s | recommendForAllUsers {spark_alone:.1f} s; + seen removed "
                f"{base['recommendForAllUsers_unseen']['seconds']:.1f} s (mean list {base['recommendForAllUsers_unseen']['mean_list_length']}) | "
                f"{spark_alone / max(r['task_seconds'].get('recommend', 0), 1e-9):.2f}x (step), "
                f"{spark_alone / max(base[ours]['seconds'], 1e-9):.2f}x (alone) |")
        lib = r.get("implicit_library") or {}
        if "per_iteration_seconds" in lib and "fit" in (r.get("fit_seconds") or {}):  # not when fits ran side by side
            ours = r["fit_seconds"]["fit"] / r["als_params"]["max_iter"]
            lines.append(f"| {r['dataset']} | train: fit {r['fit_seconds']['fit']:.1f} s, {ours:.2f} s per iteration | "
                         f"implicit {lib['per_iteration_seconds']:.2f} s per iteration | {ours / lib['per_iteration_seconds']:.1f}x slower |")
    if not lines:
        return ""
    return "\n\n| data | project | baseline | baseline / project |\n|---|---|---|---|\n" + "\n".join(lines)


def plot_time_against_size(rows: list[dict], target: Path) -> Path:
    """Seconds per task against interactions, log-log, with each task's fitted growth exponent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = sorted((r for r in rows if r.get("interactions")), key=lambda r: r["interactions"])
    sizes = np.array([r["interactions"] for r in rows], dtype=float)
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
    for task in (*TASKS, "DAG"):
        seconds = np.array([r["dag_seconds"] if task == "DAG" else r["task_seconds"].get(task, np.nan) for r in rows], dtype=float)
        keep = np.isfinite(seconds) & (seconds > 0)
        if keep.sum() < 2:
            continue
        exponent = np.polyfit(np.log(sizes[keep]), np.log(seconds[keep]), 1)[0]
        axes.plot(sizes[keep], seconds[keep], marker="o", label=f"{task} (n^{exponent:.2f})")
    axes.set(xscale="log", yscale="log", xlabel="interactions", ylabel="seconds", title="Time against size, per task")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target)
    plt.close(figure)
    return target


if __name__ == "__main__":
    main()
