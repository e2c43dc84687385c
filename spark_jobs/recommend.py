"""Top-N unseen songs for every user; write recommended_songs.csv and publish it and the model."""

from pathlib import Path

from musicrec import job
from musicrec.model import load
from musicrec.paths import RECOMMENDATIONS_FILE, publish_dir_as_link, publish_file, published_dir_of_run
from musicrec.recommend import top_n_unseen, with_original_ids, write_single_csv
from musicrec.spark_config import get_spark


def work(args):
    run_dir = Path(args.run_dir)
    spark = get_spark("musicrec-recommend")
    model = load(spark, args.model)
    interactions = spark.read.parquet(args.interactions).cache()
    items = spark.read.parquet(args.items)
    # Exclude everything the user already has, train and test alike: a recommendation is news.
    top = top_n_unseen(model, interactions, args.top_n)
    rows = with_original_ids(top, interactions, items).cache()
    csv_path = write_single_csv(rows, run_dir / "recommend" / RECOMMENDATIONS_FILE)
    users = rows.select("user_id").distinct().count()
    published = published_dir_of_run(run_dir)
    # Model first, CSV last: a reader of the CSV can trust that the published model made it.
    model_link = publish_dir_as_link(Path(args.model), published / "models", published / "model", label=run_dir.name)
    published_csv = publish_file(csv_path, published / RECOMMENDATIONS_FILE)
    return {
        "csv_path": str(csv_path),
        "published_csv_path": str(published_csv),
        "published_model_path": str(model_link),
        "users": users,
        "rows": rows.count(),
        "top_n": args.top_n,
    }


if __name__ == "__main__":
    parser = job.parser_for("recommend", __doc__)
    parser.add_argument("--model", required=True, help="train's model_path")
    parser.add_argument("--interactions", required=True, help="preprocess's interactions_path")
    parser.add_argument("--items", required=True, help="preprocess's items_path")
    parser.add_argument("--top-n", type=int, default=10)
    job.run("recommend", parser, work)
