"""Spark's own top-N against the project's, on one saved model, in one spark-submit.

    spark-submit --py-files <musicrec.zip> bench/recommend_baselines.py --model <run>/train/model \
        --interactions <run>/preprocess/interactions [--top-n 10]

Times, each materialised the same way (written as parquet to a scratch folder):
  recommendForAllUsers          ALSModel.recommendForAllUsers(top_n), exploded: Spark alone
  recommendForAllUsers_unseen   the same, then the songs each user already has removed (an
                                anti-join): lists come out shorter than top_n, see mean_list_length
  top_n_unseen                  musicrec.recommend.top_n_unseen: seen songs grouped by Spark (what
                                the recommend step runs on ratings)
  top_n_unseen_in_files         musicrec.recommend.top_n_unseen_in_files: what the recommend step
                                runs (file by file on play counts, whose files hold whole users)
Prints one line `BASELINES {...}` (seconds and list lengths). run_bench.py calls it on the DAG's
own model after each run on generated data; `--only top_n_unseen` times just that one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--interactions", required=True)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--only", action="append", help="time only this variant (repeatable), e.g. --only top_n_unseen")
    args = parser.parse_args()

    from pyspark.sql import functions as F

    from musicrec import columns as C
    from musicrec.model import load
    from musicrec.recommend import top_n_unseen, top_n_unseen_in_files
    from musicrec.spark_config import get_spark

    spark = get_spark("musicrec-bench-baselines")
    model = load(spark, args.model)
    seen = spark.read.parquet(args.interactions).select(C.USER_INDEX, C.ITEM_INDEX).cache()
    seen.count()
    scratch = tempfile.mkdtemp(prefix="musicrec-baselines-")

    def spark_top_n():
        top = model.als.recommendForAllUsers(args.top_n)
        # Named after the model's columns: user_index, recommendations[item_index, rating]
        return top.select(C.USER_INDEX, F.posexplode("recommendations").alias("pos", "rec")).select(
            C.USER_INDEX, (F.col("pos") + 1).alias("rank"), F.col(f"rec.{C.ITEM_INDEX}").alias(C.ITEM_INDEX),
            F.col("rec.rating").alias("score"),
        )

    variants = {
        "recommendForAllUsers": spark_top_n,
        "recommendForAllUsers_unseen": lambda: spark_top_n().join(seen, [C.USER_INDEX, C.ITEM_INDEX], "left_anti"),
        "top_n_unseen": lambda: top_n_unseen(model, seen, args.top_n),
        "top_n_unseen_in_files": lambda: top_n_unseen_in_files(model, args.interactions, args.top_n),
    }
    results = {}
    for name, build in variants.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        build().write.parquet(f"{scratch}/{name}")
        seconds = time.perf_counter() - started
        written = spark.read.parquet(f"{scratch}/{name}")
        rows, users = written.count(), written.select(C.USER_INDEX).distinct().count()
        results[name] = {"seconds": round(seconds, 2), "rows": rows, "mean_list_length": round(rows / max(users, 1), 2)}
    shutil.rmtree(scratch, ignore_errors=True)
    print("BASELINES " + json.dumps(results))
    spark.stop()


if __name__ == "__main__":
    main()
