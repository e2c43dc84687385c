"""musicrec.id_tables: reading preprocess's ID tables."""

from musicrec import columns as C
from musicrec.id_tables import read_id_tables


def test_the_id_tables_are_read_with_their_schema_and_no_spark_job(spark, tmp_path):
    spark.createDataFrame([("u7", 0), ("u3", 1)], f"{C.USER_ID} string, {C.USER_INDEX} int") \
        .write.parquet(str(tmp_path / "user_ids"))
    spark.createDataFrame([("s9", 0)], f"{C.ITEM_ID} string, {C.ITEM_INDEX} int").write.parquet(str(tmp_path / "song_ids"))
    context, group = spark.sparkContext, "musicrec-test-read-id-tables"
    context.setJobGroup(group, "reading the ID tables")
    try:
        ids = read_id_tables(spark, str(tmp_path / "user_ids"), str(tmp_path / "song_ids"))
        # Inferring a parquet schema runs a job; every step reads these tables.
        assert context.statusTracker().getJobIdsForGroup(group) == []
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    assert ids.users.dtypes == [(C.USER_ID, "string"), (C.USER_INDEX, "int")]
    assert ids.songs.dtypes == [(C.ITEM_ID, "string"), (C.ITEM_INDEX, "int")]
    assert sorted(map(tuple, ids.users.collect())) == [("u3", 1), ("u7", 0)]
    assert [tuple(row) for row in ids.songs.collect()] == [("s9", 0)]
    assert read_id_tables(spark, str(tmp_path / "user_ids"), "") is None  # a run whose preprocess wrote none
