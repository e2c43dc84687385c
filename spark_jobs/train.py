"""Split the interactions (random, stratified or temporal), optionally tune ALS on a validation
split carved from the training part, fit the evaluation model on the training part, then refit
the same parameters on every interaction: the model recommend uses. Saves both models and splits."""

import shutil
import time
from pathlib import Path

from musicrec import columns as C
from musicrec import job, side_by_side
from musicrec.errors import PipelineError
from musicrec.evaluation import RANKING_USERS, headline_of, ranking_users_arg, validation_score
from musicrec.id_tables import required_id_tables
from musicrec.model import EXPLICIT, AlsParams, fit
from musicrec.paths import staged_dir
from musicrec.spark_config import get_spark
from musicrec.splits import DEFAULT_SPLIT, SPLITS, newest_timestamp, validation_split, write_split
from musicrec.tuning import VALIDATION_FRACTION, chosen_params, search


def work(args):
    run_dir = Path(args.run_dir)
    spark = get_spark("musicrec-train")
    interactions = spark.read.parquet(args.interactions)
    ids = required_id_tables(spark, args.user_ids, args.song_ids)  # before hours of training, not after
    params = AlsParams(
        rank=args.rank, reg_param=args.reg_param, max_iter=args.max_iter, seed=args.seed,
        feedback=args.feedback, alpha=args.alpha,
    )
    checkpoints = str(run_dir / "checkpoints")
    seconds = {}
    with staged_dir(run_dir / "train") as out:
        train_dir, test_dir = write_split(interactions, args.split, args.test_fraction, args.seed, out, ids)
        train, test = spark.read.parquet(str(train_dir)), spark.read.parquet(str(test_dir))
        if not args.tune:  # tuning keeps the timestamps (a temporal validation split); the fit needs none
            train = train.select(C.USER_INDEX, C.ITEM_INDEX, C.RATING)
        # Cached for tuning's many fits and for ratings (their biases and residuals read it four
        # times). One fit of play counts reads the files once: uncached, with the counts from the
        # files' footers and the newest timestamp from their statistics, the step alone took 81.5
        # and 84.8 s against 90.4 and 96.3 s at 25M plays (the same models, to the bit).
        if args.tune or args.feedback == EXPLICIT:
            train = train.cache()
        train_rows, test_rows = train.count(), test.count()
        if train_rows == 0 or test_rows == 0:
            raise PipelineError(
                f"{interactions.count()} interactions are too few to split {args.split} with test_fraction="
                f"{args.test_fraction}: train has {train_rows} rows, test {test_rows}"
            )
        tuning = []
        if args.tune:
            started = time.perf_counter()
            tuning = tune(train, ids, params, args, checkpoints)
            params = chosen_params(tuning, params)
            seconds["tune"] = round(time.perf_counter() - started, 3)
        fits = {"fit": lambda: fit(train, params, checkpoints).save(out / "eval_model")}
        if args.refit:
            fits["refit"] = lambda: fit(interactions, params, checkpoints).save(out / "model")
        _, fit_seconds = side_by_side.run_timed(fits, together=side_by_side.pays_off(train_rows + test_rows))
        seconds.update(fit_seconds)
        newest = newest_timestamp(train_dir)
    shutil.rmtree(checkpoints, ignore_errors=True)
    final = run_dir / "train"
    return {
        "model_path": str(final / ("model" if args.refit else "eval_model")),
        "eval_model_path": str(final / "eval_model"),
        "refit": args.refit,
        "train_path": str(final / "train"),
        "test_path": str(final / "test"),
        "feedback": args.feedback,
        "split": {"kind": args.split, "test_fraction": args.test_fraction, "seed": args.seed},
        "train_rows": train_rows,
        "test_rows": test_rows,
        "train_max_timestamp": newest,
        "params": vars(params),
        "tuning": tuning,
        "fit_seconds": seconds,
    }


def tune(train, ids, params: AlsParams, args, checkpoints: str) -> list[dict]:
    """The grid search of musicrec.tuning on a validation split carved from `train` (its draw
    hashes the IDs, from `ids`)."""
    fit_split, validation = validation_split(train, args.split, VALIDATION_FRACTION, args.seed, ids)
    fit_split, validation = fit_split.cache(), validation.cache()
    if fit_split.isEmpty() or validation.isEmpty():
        raise PipelineError(f"the training split ({train.count()} rows) is too small to carve a validation split for tune")
    metric, _ = headline_of(args.feedback, args.k)

    def score(model, fitted_on, held_out):
        return validation_score(model, fitted_on, held_out, args.feedback, args.k, ranking_users=args.ranking_users)

    return search(fit_split, validation, params, score, lower_is_better=metric == "rmse", checkpoint_dir=checkpoints)


if __name__ == "__main__":
    parser = job.parser_for("train", __doc__)
    parser.add_argument("--interactions", required=True, help="preprocess's interactions_path (parquet)")
    parser.add_argument("--user-ids", default="", help="preprocess's user_ids_path: the splits' draw hashes the IDs")
    parser.add_argument("--song-ids", default="", help="preprocess's song_ids_path")
    parser.add_argument("--feedback", required=True, choices=["explicit", "implicit"])
    parser.add_argument("--split", default=DEFAULT_SPLIT, choices=SPLITS, help="how the test split is held out")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rank", type=int, default=AlsParams.rank)
    parser.add_argument("--reg-param", type=float, default=AlsParams.reg_param)
    parser.add_argument("--max-iter", type=int, default=AlsParams.max_iter)
    parser.add_argument("--alpha", type=float, default=AlsParams.alpha, help="implicit feedback confidence weight")
    parser.add_argument("--tune", type=job.flag, default=False, help="grid-search rank, regParam (and alpha) first")
    parser.add_argument("--refit", type=job.flag, default=True, help="refit on every interaction for recommend")
    parser.add_argument("--k", type=int, default=10, help="cut-off of NDCG when tuning on play counts")
    parser.add_argument(
        "--ranking-users", type=ranking_users_arg, default=RANKING_USERS,
        help="tuning on play counts: NDCG over at most about this many validation users (0: all)",
    )
    job.run("train", parser, work)
