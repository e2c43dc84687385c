"""Model quality on the shared datasets, against the targets of the README's "Quality" table.

    .venv/bin/python bench/quality.py                      # every dataset present in ../shared
    .venv/bin/python bench/quality.py --only ml-100k --seeds 1 2 3
    .venv/bin/python bench/quality.py --only ml-100k --params '{"max_iter": 20}'   # other ALS params

Runs the pipeline's own library functions (read, prepare, split, fit, evaluate) in one local
SparkSession, so each number is what the DAG's train and evaluate steps compute, without six
JVM start-ups per configuration. For play counts it also fits the `implicit` library's ALS
(bench/requirements.txt) on the same training split and scores its top-10 with the same metric
code on the same users. Appends raw results to bench/results/quality.jsonl and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "spark_jobs")]
SHARED = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "bench" / "results" / "quality.jsonl"


def prepared(spark, archive: Path):
    """The indexed interactions of an archive, as preprocess makes them, with their IDs (the
    splits' draw hashes them; cached)."""
    from musicrec.archive import extract
    from musicrec.datasets import detect_format
    from musicrec.id_tables import with_ids
    from musicrec.prepare import add_indices, prepare

    folder = Path(tempfile.mkdtemp(prefix="quality-"))
    extract(archive, folder)
    fmt, base = detect_format(folder)
    raw, items = fmt.read_interactions(spark, base, {}), fmt.read_items(spark, base, {})
    data = prepare(raw, items, fmt.feedback, fmt.rating_range)
    indexed = add_indices(data.rows, sum_plays=data.sum_plays)
    return with_ids(indexed.interactions, indexed.id_tables).cache(), fmt


def explicit(spark, archive: Path, split: str, fraction: float, seeds: list[int], params: dict) -> dict:
    from musicrec.evaluation import evaluate_model
    from musicrec.model import AlsParams, fit
    from musicrec.splits import split_interactions

    data, fmt = prepared(spark, archive)
    runs = []
    for seed in seeds:
        train, test = (frame.cache() for frame in split_interactions(data, split, fraction, seed))
        started = time.perf_counter()
        model = fit(train, AlsParams(seed=seed, **params), tempfile.mkdtemp())
        metrics = evaluate_model(model, train, test, "explicit", 10, rating_max=fmt.rating_range[1])
        runs.append({"seed": seed, "rmse": metrics["model"]["rmse"], "baseline_rmse": metrics["bias_baseline"]["rmse"],
                     "ndcg_at_10": metrics["model"]["ndcg_at_10"], "seconds": round(time.perf_counter() - started, 1)})
        train.unpersist(), test.unpersist()
    mean = {name: sum(run[name] for run in runs) / len(runs) for name in ("rmse", "baseline_rmse", "ndcg_at_10")}
    return {"split": split, "test_fraction": fraction, "params": params, "runs": runs, **mean}


def implicit_vs_library(spark, archive: Path, split: str, fraction: float, seed: int, params: dict) -> dict:
    from musicrec.evaluation import evaluate_model
    from musicrec.model import AlsParams, fit
    from musicrec.splits import split_interactions

    data, _ = prepared(spark, archive)
    train, test = (frame.cache() for frame in split_interactions(data, split, fraction, seed))
    started = time.perf_counter()
    model = fit(train, AlsParams(seed=seed, feedback="implicit", **params), tempfile.mkdtemp())
    ours_seconds = time.perf_counter() - started
    metrics = evaluate_model(model, train, test, "implicit", 10, ranking_users=0)  # every user, as library_ndcg
    result = {
        "split": split, "test_fraction": fraction, "seed": seed, "params": params,
        "ndcg_at_10": metrics["model"]["ndcg_at_10"], "popularity_ndcg_at_10": metrics["popularity_baseline"]["ndcg_at_10"],
        "users": metrics["model"]["ranking_users"], "fit_seconds": round(ours_seconds, 1),
    }
    for variant in ("raw", "bm25"):
        result[f"implicit_{variant}"] = library_ndcg(spark, train, test, model, variant, seed)
    return result


def library_ndcg(spark, train, test, our_model, variant: str, seed: int) -> dict:
    """The `implicit` library's ALS with its defaults, on the same training split, scored with the
    pipeline's metric code over the same users (those our model has factors for)."""
    import numpy as np
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import bm25_weight
    from scipy.sparse import csr_matrix

    from musicrec import columns as C
    from musicrec.metrics import ranking_metrics

    rows = train.select(C.USER_INDEX, C.ITEM_INDEX, C.RATING).toPandas()
    shape = (int(rows[C.USER_INDEX].max()) + 1, int(test.agg({C.ITEM_INDEX: "max"}).first()[0]) + 1)
    shape = (shape[0], max(shape[1], int(rows[C.ITEM_INDEX].max()) + 1))
    plays = csr_matrix((rows[C.RATING].to_numpy(dtype=np.float32), (rows[C.USER_INDEX], rows[C.ITEM_INDEX])), shape=shape)
    weighted = bm25_weight(plays, K1=100, B=0.8).tocsr() if variant == "bm25" else plays
    model = AlternatingLeastSquares(random_state=seed)  # the library's defaults: 100 factors, reg 0.01, 15 iterations
    started = time.perf_counter()
    model.fit(weighted, show_progress=False)
    seconds = time.perf_counter() - started
    known = our_model.als.userFactors.selectExpr(f"id AS {C.USER_INDEX}")
    relevant = test.join(known, C.USER_INDEX).cache()
    users = np.array(sorted(r[0] for r in relevant.select(C.USER_INDEX).distinct().collect()))
    ids, _ = model.recommend(users, weighted[users], N=10, filter_already_liked_items=True)
    recommended = spark.createDataFrame(
        [(int(u), int(item), rank + 1) for u, items in zip(users, ids) for rank, item in enumerate(items) if item >= 0],
        f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, rank int",
    )
    scores = ranking_metrics(recommended, relevant, 10)
    return {"ndcg_at_10": scores["ndcg_at_10"], "users": scores["ranking_users"], "fit_seconds": round(seconds, 1),
            "per_iteration_seconds": round(seconds / model.iterations, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["ml-100k", "ml-latest-small", "lastfm-2k"], action="append")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--params", type=json.loads, default={},
                        help='JSON of AlsParams fields over the defaults, e.g. \'{"rank": 10, "reg_param": 0.1}\'')
    args = parser.parse_args()
    import os

    # Python workers: this venv's python, and the library on their path (as --py-files gives jobs).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "spark_jobs"), os.environ.get("PYTHONPATH")]))
    from musicrec.model import AlsParams
    from musicrec.spark_config import SPARK_CONF
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("musicrec-quality")
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp())
    defaults = AlsParams()
    explicit_params = {"rank": defaults.rank, "reg_param": defaults.reg_param, "max_iter": defaults.max_iter, **args.params}
    implicit_params = {"alpha": defaults.alpha, **explicit_params}
    explicit_params.pop("alpha", None)
    wanted = set(args.only or ["ml-100k", "ml-latest-small", "lastfm-2k"])
    results = {}
    if "ml-100k" in wanted and (SHARED / "ml-100k.zip").exists():
        results["ml-100k"] = explicit(spark, SHARED / "ml-100k.zip", "stratified", 0.25, args.seeds, explicit_params)
    if "ml-latest-small" in wanted and (SHARED / "ml-latest-small.zip").exists():
        results["ml-latest-small"] = explicit(spark, SHARED / "ml-latest-small.zip", "random", 0.2, args.seeds[:1], explicit_params)
    if "lastfm-2k" in wanted and (SHARED / "hetrec2011-lastfm-2k.zip").exists():
        results["lastfm-2k"] = implicit_vs_library(spark, SHARED / "hetrec2011-lastfm-2k.zip", "stratified", 0.2, 42, implicit_params)
    spark.stop()
    record = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": platform.node(), "results": results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print_table(results)
    return 0


def print_table(results: dict) -> None:
    print("| dataset | split | measure | value | target |")
    print("|---|---|---|---|---|")
    if "ml-100k" in results:
        r = results["ml-100k"]
        print(f"| ml-100k | stratified 75/25, seeds {[run['seed'] for run in r['runs']]} | RMSE (mean) | {r['rmse']:.4f} "
              f"(bias baseline {r['baseline_rmse']:.4f}; NDCG@10 {r['ndcg_at_10']:.4f}) | <= 0.915 |")
    if "ml-latest-small" in results:
        r = results["ml-latest-small"]
        print(f"| ml-latest-small | random 80/20 | RMSE | {r['rmse']:.4f} (bias baseline {r['baseline_rmse']:.4f}) | <= 0.835 |")
    if "lastfm-2k" in results:
        r = results["lastfm-2k"]
        best = max(r["implicit_raw"]["ndcg_at_10"], r["implicit_bm25"]["ndcg_at_10"])
        print(f"| hetrec-lastfm-2k | stratified 80/20 | NDCG@10 | {r['ndcg_at_10']:.4f} | >= implicit's {best:.4f} "
              f"(raw {r['implicit_raw']['ndcg_at_10']:.4f}, bm25 {r['implicit_bm25']['ndcg_at_10']:.4f}) |")
        print(f"| hetrec-lastfm-2k | stratified 80/20 | x popularity | {r['ndcg_at_10'] / r['popularity_ndcg_at_10']:.2f}x "
              f"({r['popularity_ndcg_at_10']:.4f}) | >= 2.5x |")


if __name__ == "__main__":
    sys.exit(main())
