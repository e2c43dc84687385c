"""Split the interactions at random, fit ALS on the training part, save model and both splits."""

import shutil
from pathlib import Path

from musicrec import job
from musicrec.errors import PipelineError
from musicrec.model import AlsParams, fit, random_split
from musicrec.paths import staged_dir
from musicrec.spark_config import get_spark


def work(args):
    run_dir = Path(args.run_dir)
    spark = get_spark("musicrec-train")
    interactions = spark.read.parquet(args.interactions)
    train, test = random_split(interactions, args.test_fraction, args.seed)
    params = AlsParams(
        rank=args.rank, reg_param=args.reg_param, max_iter=args.max_iter, seed=args.seed,
        feedback=args.feedback, alpha=args.alpha,
    )
    checkpoints = run_dir / "checkpoints"
    with staged_dir(run_dir / "train") as out:
        train.write.parquet(str(out / "train"))
        test.write.parquet(str(out / "test"))
        train, test = spark.read.parquet(str(out / "train")), spark.read.parquet(str(out / "test"))
        train_rows, test_rows = train.count(), test.count()
        if train_rows == 0 or test_rows == 0:
            raise PipelineError(
                f"{interactions.count()} interactions are too few to split with test_fraction="
                f"{args.test_fraction}: train has {train_rows} rows, test {test_rows}"
            )
        model = fit(train, params, str(checkpoints))
        model.save(out / "model")
    shutil.rmtree(checkpoints, ignore_errors=True)
    final = run_dir / "train"
    return {
        "model_path": str(final / "model"),
        "train_path": str(final / "train"),
        "test_path": str(final / "test"),
        "feedback": args.feedback,
        "train_rows": train_rows,
        "test_rows": test_rows,
        "params": vars(params),
    }


if __name__ == "__main__":
    parser = job.parser_for("train", __doc__)
    parser.add_argument("--interactions", required=True, help="preprocess's interactions_path (parquet)")
    parser.add_argument("--feedback", required=True, choices=["explicit", "implicit"])
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rank", type=int, default=AlsParams.rank)
    parser.add_argument("--reg-param", type=float, default=AlsParams.reg_param)
    parser.add_argument("--max-iter", type=int, default=AlsParams.max_iter)
    parser.add_argument("--alpha", type=float, default=AlsParams.alpha, help="implicit feedback confidence weight")
    job.run("train", parser, work)
