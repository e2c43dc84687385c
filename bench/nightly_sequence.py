"""Three nights on the same dataset, the second sabotaged: does the gate keep the first night's CSV?

    .venv/bin/python bench/nightly_sequence.py                 # the embedded sample
    .venv/bin/python bench/nightly_sequence.py --dataset-url file:///.../ml-latest-small.zip

Night 1 runs with the defaults, night 2 with rank 1 and one iteration, night 3 with the defaults
again; each is `airflow dags test` in a fresh Airflow home and data root (nothing else touched).
Prints each night's gate decision and scores, and whether the published CSV after night 2 is
night 1's byte for byte; appends the raw record to bench/results/nightly_sequence.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "spark_jobs")]
RESULTS = ROOT / "bench" / "results" / "nightly_sequence.jsonl"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
NIGHTS = ({}, {"rank": 1, "max_iter": 1}, {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-url", default="")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="nightly-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(scratch / "airflow"), "MUSICREC_DATA_ROOT": str(scratch / "data"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "SPARK_LOCAL_IP": "127.0.0.1",
        "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[*]"}',
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    from musicrec import history

    published = scratch / "data" / "published" / "recommended_songs.csv"
    nights = []
    for number, conf in enumerate(NIGHTS, start=1):
        started = time.perf_counter()
        done = subprocess.run(
            [AIRFLOW, "dags", "test", "music_recommendation", "-c", json.dumps({"dataset_url": args.dataset_url, **conf})],
            env=env, capture_output=True, text=True,
        )
        row = history.runs(scratch / "data")[-1]
        nights.append({
            "night": number, "conf": conf, "exit_code": done.returncode, "seconds": round(time.perf_counter() - started, 1),
            "decision": row["status"], "model_score": row["model_score"], "baseline_score": row["baseline_score"],
            "champion_score": row["champion_score"], "published": row["published"],
            "reasons": row["details"].get("gate", {}).get("reasons"),
            "published_csv_sha256": hashlib.sha256(published.read_bytes()).hexdigest() if published.exists() else None,
        })
        print(json.dumps(nights[-1]))
    kept = nights[1]["published_csv_sha256"] == nights[0]["published_csv_sha256"] is not None
    record = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dataset_url": args.dataset_url, "nights": nights,
              "night2_refused": nights[1]["decision"] == "refused", "csv_after_night2_is_night1s": kept}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(f"night 2 refused: {record['night2_refused']}; published CSV after night 2 is night 1's byte for byte: {kept}")
    return 0 if record["night2_refused"] and kept else 1


if __name__ == "__main__":
    sys.exit(main())
