"""The `implicit` library's ALS on the same play counts as the DAG's train step: seconds per iteration.

    .venv/bin/python bench/implicit_baseline.py --train <run>/train/train --rank 20 --iterations 10

Reads the train split the DAG wrote (parquet: user_index, item_index, rating = play count), builds
the same confidence log(1 + plays) in a CSR matrix, and fits implicit's CPU ALS with the same
rank, regularisation and iterations on every core (its default). Prints `IMPLICIT {...}`:
seconds of the fit alone and per iteration (matrix building excluded, as Spark's fit excludes
reading the parquet). A benchmark-only dependency (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True, help="the DAG's train split (parquet folder)")
    parser.add_argument("--rank", type=int, default=20)
    parser.add_argument("--reg-param", type=float, default=0.15)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()

    import numpy as np
    import pyarrow.parquet as pq
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    table = pq.read_table(args.train, columns=["user_index", "item_index", "rating"])
    users, items = table["user_index"].to_numpy(), table["item_index"].to_numpy()
    confidence = np.log1p(table["rating"].to_numpy()).astype(np.float32)
    matrix = csr_matrix((confidence, (users, items)), shape=(users.max() + 1, items.max() + 1))
    model = AlternatingLeastSquares(
        factors=args.rank, regularization=args.reg_param, alpha=args.alpha, iterations=args.iterations,
        calculate_training_loss=False, random_state=42,
    )
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    print("IMPLICIT " + json.dumps({
        "fit_seconds": round(seconds, 3), "per_iteration_seconds": round(seconds / args.iterations, 4),
        "rows": int(matrix.nnz), "users": int(matrix.shape[0]), "songs": int(matrix.shape[1]),
        "rank": args.rank, "iterations": args.iterations,
    }))


if __name__ == "__main__":
    main()
