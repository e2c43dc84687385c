"""The benchmark's yardstick: a spark-submit that only builds the session and counts 1,000 rows.

Its wall time tracks how fast this machine is right now, so DAG times can be read as multiples
of it (the same run measures both)."""

from musicrec.spark_config import get_spark

get_spark("musicrec-trivial").range(1000).count()
