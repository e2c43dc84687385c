"""Extract the downloaded archive (zip or tar.gz) into the run folder. No SparkSession.

With --sha256 (download's sha256), the archive is verified first: the download cache is shared
by runs, so an old run re-extracting must not silently read a newer snapshot of the same URL.
"""

from pathlib import Path

from musicrec import job
from musicrec.archive import extract
from musicrec.spark_config import estimated_rows


def work(args):
    target = Path(args.run_dir) / "extract"
    count = extract(Path(args.archive), target, sha256=args.sha256.strip() or None)
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    # preprocess's Spark settings depend on the data's size (musicrec.spark_config.sized_conf)
    return {"dataset_dir": str(target), "file_count": count, "dataset_bytes": size, "estimated_rows": estimated_rows(size)}


if __name__ == "__main__":
    parser = job.parser_for("extract", __doc__)
    parser.add_argument("--archive", required=True, help="the archive file (download's archive_path)")
    parser.add_argument("--sha256", default="", help="expected sha256 of the archive (download's sha256); empty: not checked")
    job.run("extract", parser, work)
