"""Extract the downloaded archive (zip or tar.gz) into the run folder. No SparkSession."""

from pathlib import Path

from musicrec import job
from musicrec.archive import extract


def work(args):
    target = Path(args.run_dir) / "extract"
    count = extract(Path(args.archive), target)
    return {"dataset_dir": str(target), "file_count": count}


if __name__ == "__main__":
    parser = job.parser_for("extract", __doc__)
    parser.add_argument("--archive", required=True, help="the archive file (download's archive_path)")
    job.run("extract", parser, work)
