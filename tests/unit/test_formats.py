"""Each dataset format, on a small fixture written by the test: detection, IDs, titles."""

from __future__ import annotations

import pytest

from musicrec import columns as C
from musicrec.datasets import detect_format
from musicrec.errors import PipelineError
from musicrec.prepare import prepare

BIG_ID = "9223372036854775807"  # the largest 64-bit ID
SHA_USER = "00000c289a1829a808ac09c00daf10bc3c4e223b"


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))


def run(spark, folder, feedback=None, forced=None, options=None):
    fmt, base = detect_format(folder, forced, options)
    prepared = prepare(fmt.read_interactions(spark, base, options or {}), fmt.read_items(spark, base, options or {}), feedback or fmt.feedback, fmt.rating_range)
    kept = {(r[C.USER_ID], r[C.ITEM_ID]): r[C.RATING] for r in prepared.interactions.collect()}
    titles = {r[C.ITEM_ID]: r[C.TITLE] for r in prepared.items.collect()}
    return fmt, prepared, kept, titles


def test_movielens_100k_latin1(spark, tmp_path):
    write(tmp_path / "ml-100k" / "u.data", "1\t10\t5\t881250949\n2\t10\t3\t881250950\n2\t11\t6\t881250951\n")
    flags = "|".join("0" * 19)
    write(tmp_path / "ml-100k" / "u.item", f"10|Café Society (1995)|01-Jan-1995||http://x|{flags}\n11|Plain (1996)|01-Jan-1996||http://y|{flags}\n", "latin-1")
    fmt, prepared, kept, titles = run(spark, tmp_path)
    assert fmt.name == "movielens-100k"
    assert kept == {("1", "10"): 5.0, ("2", "10"): 3.0}
    assert prepared.rejected_by_reason == {"rating_out_of_range": 1}
    assert titles["10"] == "Café Society (1995)"


def test_movielens_dat_double_colon_latin1(spark, tmp_path):
    write(tmp_path / "ml-1m" / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    write(tmp_path / "ml-1m" / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Pokémon, the Movie (1999)::Animation\n", "latin-1")
    fmt, _, kept, titles = run(spark, tmp_path)
    assert fmt.name == "movielens-dat"
    assert kept == {("1", "1193"): 5.0, ("1", "661"): 3.0}
    assert titles["661"] == "Pokémon, the Movie (1999)"


def test_movielens_csv_with_awkward_titles(spark, tmp_path):
    write(tmp_path / "ml" / "ratings.csv", f"userId,movieId,rating,timestamp\n1,{BIG_ID},4.5,1\n1,2,3.0,2\n")
    write(tmp_path / "ml" / "movies.csv", f'movieId,title,genres\n{BIG_ID},"Say ""Hi"", Then\nGo",Drama\n2,Plain,Comedy\n')
    fmt, _, kept, titles = run(spark, tmp_path)
    assert fmt.name == "movielens-csv"
    assert kept == {("1", BIG_ID): 4.5, ("1", "2"): 3.0}
    assert titles[BIG_ID] == 'Say "Hi", Then\nGo'


def test_lastfm_hetrec_at_archive_root(spark, tmp_path):
    write(tmp_path / "user_artists.dat", "userID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t11690\r\n3\t51\t0\r\n")
    write(tmp_path / "artists.dat", "id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://a\thttp://b\n52\tMorcheeba\thttp://c\thttp://d\n")
    fmt, prepared, kept, titles = run(spark, tmp_path)
    assert (fmt.name, fmt.feedback) == ("lastfm-hetrec", "implicit")
    assert kept == {("2", "51"): 13883.0, ("2", "52"): 11690.0}
    assert prepared.rejected_by_reason == {"non_positive_count": 1}
    assert titles == {"51": "Duran Duran", "52": "Morcheeba"}


def test_lastfm_360k_sha_users_and_missing_mbids(spark, tmp_path):
    rows = [
        f"{SHA_USER}\t3bd73256-3905-4f3a-97e2-8b341527f805\tbetty blowtorch\t2137",
        f"{SHA_USER}\t\tdie Ärzte\t5",
        f"{SHA_USER}\t\tDie Ärzte\t1099",  # same artist by name: play counts, so summed with the 5
        "bad line without tabs",
    ]
    write(tmp_path / "lastfm-dataset-360K" / "usersha1-artmbid-artname-plays.tsv", "\n".join(rows) + "\n")
    fmt, prepared, kept, titles = run(spark, tmp_path)
    assert fmt.name == "lastfm-360k"
    assert kept == {(SHA_USER, "3bd73256-3905-4f3a-97e2-8b341527f805"): 2137.0, (SHA_USER, "name:die ärzte"): 1104.0}
    assert prepared.rejected_by_reason == {"malformed_line": 1}
    assert (prepared.rows_kept, prepared.plays_aggregated) == (3, 1)
    assert titles["3bd73256-3905-4f3a-97e2-8b341527f805"] == "betty blowtorch"
    assert titles["name:die ärzte"] == "Die Ärzte"  # of two spellings, the smallest ("D" < "d")


def test_generic_mapping_with_items_file(spark, tmp_path):
    write(tmp_path / "logs" / "plays.tsv", "listener\tts\ttrack\tcount\nana\t5\tt-1\t3\nbo\t6\tt-2\t10\nbo\t7\tt-9\t1\n")
    write(tmp_path / "logs" / "tracks.tsv", "id\tname\nt-1\tFirst Song\nt-2\tSecond, Song\n")
    mapping = {"file": "plays.tsv", "sep": "\t", "user": "listener", "item": "track", "value": "count", "timestamp": "ts",
               "feedback": "implicit", "items_file": "tracks.tsv", "item_id": "id", "title": "name"}
    fmt, prepared, kept, titles = run(spark, tmp_path, options=mapping)
    assert (fmt.name, fmt.feedback) == ("generic", "implicit")
    assert kept == {("ana", "t-1"): 3.0, ("bo", "t-2"): 10.0}
    assert prepared.rejected_by_reason == {"unknown_song": 1}
    assert titles["t-2"] == "Second, Song"


def test_generic_implicit_mapping_without_value_counts_each_row_as_one_play(spark, tmp_path):
    write(tmp_path / "log.csv", "listener,track,ts\nana,t-1,100\nana,t-1,2026-03-01T12:00:00Z\nbo,t-2,\nana,t-1,50\n")
    mapping = {"file": "log.csv", "user": "listener", "item": "track", "timestamp": "ts", "feedback": "implicit"}
    fmt, prepared, kept, titles = run(spark, tmp_path, options=mapping)
    assert kept == {("ana", "t-1"): 3.0, ("bo", "t-2"): 1.0}
    latest = {r[C.ITEM_ID]: r[C.TIMESTAMP] for r in prepared.interactions.collect()}
    assert latest == {"t-1": 1772366400, "t-2": None}
    assert (prepared.rows_read, prepared.rows_kept, prepared.plays_aggregated, prepared.rejected_by_reason) == (4, 4, 2, {})
    assert titles == {"t-1": "t-1", "t-2": "t-2"}  # no items file: a song is known by its ID
    with pytest.raises(PipelineError, match=r"lacks \['value'\].*only with \"feedback\": \"implicit\""):
        detect_format(tmp_path, None, {**mapping, "feedback": "explicit"})


def test_generic_mapping_errors_name_the_problem(tmp_path, spark):
    write(tmp_path / "plays.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(PipelineError, match="lacks"):
        detect_format(tmp_path, None, {"file": "plays.csv", "user": "a"})
    fmt, base = detect_format(tmp_path, None, {"file": "plays.csv", "user": "a", "item": "b", "value": "value"})
    with pytest.raises(PipelineError, match=r"\['value'\].*not in its header"):
        fmt.read_interactions(spark, base, {"file": "plays.csv", "user": "a", "item": "b", "value": "value"})
    with pytest.raises(PipelineError, match="needs a column_mapping"):
        detect_format(tmp_path, "generic", {})


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"rating_min": "one", "rating_max": 5}, r"rating_min must be a number, got 'one'"),
        ({"rating_min": 1, "rating_max": "NaN"}, r"rating_max must be a number, got 'NaN'"),
        ({"rating_min": True, "rating_max": 5}, r"rating_min must be a number, got True"),
        ({"rating_min": 5, "rating_max": 1}, r"rating_min \(5\) must be below its rating_max \(1\)"),
        ({"rating_max": 5}, r"has rating_max but not its pair"),
        ({"feedback": "plays"}, r"feedback must be one of \['explicit', 'implicit'\], got 'plays'"),
        ({"feedback": "Implicit"}, r"feedback must be one of"),
    ],
)
def test_generic_mapping_bad_scale_or_feedback_is_a_final_error(tmp_path, extra, message):
    from musicrec.errors import TransientError

    write(tmp_path / "plays.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(PipelineError, match=message) as error:
        detect_format(tmp_path, None, {"file": "plays.csv", "user": "a", "item": "b", "value": "c", **extra})
    assert not isinstance(error.value, TransientError)


def test_generic_mapping_scale_is_parsed(tmp_path):
    write(tmp_path / "plays.csv", "a,b,c\n1,2,3\n")
    mapping = {"file": "plays.csv", "user": "a", "item": "b", "value": "c", "rating_min": "0.5", "rating_max": 10}
    fmt, _ = detect_format(tmp_path, None, mapping)
    assert (fmt.feedback, fmt.rating_range) == ("explicit", (0.5, 10.0))


def listen(user, track, artist, at=1700000000, top_msid=None, info=None, mapping=None):
    """One ListenBrainz listen as a JSON line; absent keys are left out, as in the dumps."""
    import json

    metadata = {"artist_name": artist, "track_name": track, "release_name": "Dummy",
                "additional_info": info or {}, **({"mbid_mapping": mapping} if mapping else {})}
    line = {"user_name": user, "listened_at": at, "track_metadata": {k: v for k, v in metadata.items() if v is not None}}
    return json.dumps({**line, **({"recording_msid": top_msid} if top_msid else {})})


def test_listenbrainz_dump_ids_titles_and_bad_lines(spark, tmp_path):
    dump = tmp_path / "listenbrainz-listens-dump-1" / "listens"
    november = [
        listen("rob", "Teardrop", "Massive Attack", top_msid="msid-1", info={"recording_mbid": "mbid-B"}, mapping={"recording_mbid": "mbid-A"}),
        listen("rob", "Angel", "Massive Attack", top_msid="msid-2", info={"recording_mbid": "mbid-B", "recording_msid": "msid-x"}),
        listen("rob", "Glory Box", "Portishead", top_msid="msid-3", info={"recording_msid": "msid-x"}),
        listen("ana", "Sour Times", "Portishead", info={"recording_msid": "msid-4"}),
        listen("ana", "Roads", "Portishead"),  # no ID at all: artist - track
        '{"user_name": "rob", "listened_at": ',  # cut short: not JSON
    ]
    january = [
        listen("ana", "roads", "PORTISHEAD", at="2023-11-14T22:13:21Z"),  # the same song, one second later
        listen("ana", None, "Portishead"),  # no track
        listen(None, "Roads", "Portishead"),  # no user
    ]
    write(dump / "2023" / "11.listens", "\n".join(november) + "\n")
    write(dump / "2024" / "1.listens", "\n".join(january) + "\n")
    write(tmp_path / "__MACOSX" / "listenbrainz-listens-dump-1" / "listens" / "2023" / "._11.listens", "\x00\x01 resource fork")
    fmt, prepared, kept, titles = run(spark, tmp_path)
    assert (fmt.name, fmt.feedback, detect_format(tmp_path)[1]) == ("listenbrainz", "implicit", dump)
    assert kept == {("rob", "mbid-A"): 1.0, ("rob", "mbid-B"): 1.0, ("rob", "msid-3"): 1.0, ("ana", "msid-4"): 1.0,
                    ("ana", "portishead - roads"): 2.0}
    assert prepared.rejected_by_reason == {"malformed_line": 1, "missing_field": 2}
    assert [r[C.RAW_LINE] for r in prepared.rejects.collect() if r[C.REJECT_REASON] == "malformed_line"] == [november[-1]]
    assert prepared.interactions.filter(f"{C.ITEM_ID} = 'portishead - roads'").first()[C.TIMESTAMP] == 1700000001
    songs = {r[C.ITEM_ID]: (r[C.TITLE], r[C.ARTIST]) for r in prepared.items.collect()}
    assert songs == {"mbid-A": ("Teardrop", "Massive Attack"), "mbid-B": ("Angel", "Massive Attack"), "msid-3": ("Glory Box", "Portishead"),
                     "msid-4": ("Sour Times", "Portishead"), "portishead - roads": ("Roads", "Portishead")}


def test_listenbrainz_json_lines_are_recognised_by_their_first_line(tmp_path):
    write(tmp_path / "export" / "listens" / "2024" / "01.jsonl", "\n" + listen("rob", "Roads", "Portishead") + "\n")
    assert detect_format(tmp_path)[0].name == "listenbrainz"
    others = tmp_path / "others"
    write(others / "meta.json", '{"name": "not a listen", "listened_at": 1}\n')
    write(others / "array.json", "[" + listen("rob", "Roads", "Portishead") + "]\n")
    write(others / ".hidden" / "x.listens", listen("rob", "Roads", "Portishead") + "\n")
    with pytest.raises(PipelineError, match="does not hold a known layout"):
        detect_format(others)
