"""Validation: each class of bad row gets its reason; the kept rows are clean and indexed."""

from __future__ import annotations

import pytest

from musicrec import columns as C
from musicrec.datasets import detect_format
from musicrec.errors import PipelineError
from musicrec.prepare import add_indices, check_usable, prepare

RATINGS = """userId,songId,rating,timestamp
1,10,4.0,100
1,11,3.5,100
2,10,5.0,100
2,10,2.0,200
3,12,4.5,
4,10,five,100
5,10,4.0,yesterday
6,10,9.0,100
7,99,3.0,100
,10,3.0,100
8,10
9,11,NaN,100
"""
SONGS = 'songId,title,artist\n10,"Hello, Goodbye",The Band\n11,"Say ""Hi""",Other\n12,Plain,Third\n'
EXPECTED_REASONS = {
    "duplicate": 1,  # user 2, song 10: the older of the two
    "non_numeric_value": 3,  # "five", "yesterday", NaN
    "rating_out_of_range": 1,  # 9.0
    "unknown_song": 1,  # song 99 has no title
    "missing_field": 1,  # empty user
    "malformed_line": 1,  # "8,10": too few fields
}


@pytest.fixture
def dataset_dir(tmp_path):
    folder = tmp_path / "archive" / "my-data"
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(RATINGS)
    (folder / "songs.csv").write_text(SONGS)
    return tmp_path / "archive"


def run_prepare(spark, dataset_dir):
    fmt, base = detect_format(dataset_dir)
    return prepare(fmt.read_interactions(spark, base, {}), fmt.read_items(spark, base, {}), "explicit", fmt.rating_range)


def test_every_bad_row_is_counted_by_reason(spark, dataset_dir):
    prepared = run_prepare(spark, dataset_dir)
    assert prepared.rejected_by_reason == dict(sorted(EXPECTED_REASONS.items()))
    assert prepared.rows_read == 12
    assert prepared.rows_kept == 4
    rejects = {(r[C.USER_ID], r[C.REJECT_REASON]) for r in prepared.rejects.collect()}
    assert ("8", "malformed_line") in rejects and ("6", "rating_out_of_range") in rejects


def test_duplicates_keep_the_latest_rating(spark, dataset_dir):
    kept = {(r[C.USER_ID], r[C.ITEM_ID]): r[C.RATING] for r in run_prepare(spark, dataset_dir).interactions.collect()}
    assert kept == {("1", "10"): 4.0, ("1", "11"): 3.5, ("2", "10"): 2.0, ("3", "12"): 4.5}


def test_titles_with_commas_and_quotes_survive(spark, dataset_dir):
    titles = {r[C.ITEM_ID]: r[C.TITLE] for r in run_prepare(spark, dataset_dir).items.collect()}
    assert titles == {"10": "Hello, Goodbye", "11": 'Say "Hi"', "12": "Plain"}


def test_indices_are_dense_and_keep_original_ids(spark, dataset_dir):
    frame, users, songs = add_indices(run_prepare(spark, dataset_dir).interactions)
    assert (users, songs) == (3, 3)
    indexed = frame.collect()
    assert sorted({r[C.USER_INDEX] for r in indexed}) == [0, 1, 2]
    assert sorted({r[C.ITEM_INDEX] for r in indexed}) == [0, 1, 2]
    pairs = {(r[C.USER_ID], r[C.USER_INDEX]) for r in indexed}
    assert len(pairs) == 3  # one index per user ID and back


def test_reject_share_over_threshold_fails_with_reasons(spark, dataset_dir):
    prepared = run_prepare(spark, dataset_dir)
    with pytest.raises(PipelineError, match=r"8 of 12 rows \(66.7%\).*max_reject_share.*non_numeric_value: 3"):
        check_usable(prepared, 0.05, "my-data")
    with pytest.raises(PipelineError, match="at least 10 are needed"):
        check_usable(prepared, 1.0, "my-data")


def test_unknown_layout_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PipelineError, match=r"does not hold a known layout.*notes.txt"):
        detect_format(tmp_path)
    with pytest.raises(PipelineError, match="unknown dataset_format"):
        detect_format(tmp_path, "lastfm-9000")


def test_undecodable_ids_are_rejected(spark, tmp_path):
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes(b"userId,songId,rating,timestamp\n1,10,4.0,1\nj\xff\xfeo,10,3.0,1\n")
    (folder / "songs.csv").write_text("songId,title,artist\n10,Song,Band\n")
    prepared = run_prepare(spark, tmp_path)
    assert prepared.rejected_by_reason == {"undecodable_text": 1}
    assert prepared.rows_kept == 1


def test_an_item_id_listed_twice_keeps_its_smallest_title(spark, tmp_path):
    folder = tmp_path / "dups"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,songId,rating,timestamp\n1,10,4.0,1\n1,11,3.0,1\n")
    # The larger title comes first in the file: "first row wins" would pick it.
    (folder / "songs.csv").write_text("songId,title,artist\n10,Zebra Song,Z\n11,Only,O\n10,Alpha Song,A\n 10 ,Middle Song,M\n")
    items = {r[C.ITEM_ID]: (r[C.TITLE], r[C.ARTIST]) for r in run_prepare(spark, tmp_path).items.collect()}
    assert items == {"10": ("Alpha Song", "A"), "11": ("Only", "O")}
