"""Download the dataset archive named by --url (empty: the embedded sample) into the shared download
cache (keyed by URL and checksum, revalidated with the server). `{{ ds }}` and `{{ ds_nodash }}`
in the URL become the run's logical date. No SparkSession."""

from pathlib import Path

from musicrec import job
from musicrec.download import fetch_cached
from musicrec.paths import download_cache_of_run
from musicrec.sources import resolve_dataset_url


def work(args):
    url = resolve_dataset_url(args.url, args.logical_date)
    got = fetch_cached(url, download_cache_of_run(Path(args.run_dir)), sha256=args.sha256 or None)
    return {
        "archive_path": str(got.path),
        "source_url": url,
        "dataset_url_template": args.url,  # as given, date template unrendered: names the dataset
        "size_bytes": got.size_bytes,
        "sha256": got.sha256,
        "from_cache": got.from_cache,
    }


if __name__ == "__main__":
    parser = job.parser_for("download", __doc__)
    parser.add_argument("--url", default="", help="http(s) or file URL of a zip or tar.gz; empty: embedded sample")
    parser.add_argument("--sha256", default="", help="expected sha256 of the archive (optional)")
    job.run("download", parser, work)
