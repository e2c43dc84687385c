"""musicrec: the library behind the Spark jobs of the music recommendation DAG.

It is importable in three places: by the Spark jobs (spark_jobs/*.py, shipped to executors as a
zip), by the Airflow operator in plugins/ (for the XCom contract and Spark settings) and by tests.
Modules that touch Spark import pyspark lazily or only inside functions the jobs call, so the
operator can import the contract without a JVM.
"""
