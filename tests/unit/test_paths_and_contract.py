"""Run folders, atomic outputs and publishing, the XCom contract, the sample, the job CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicrec import paths, result, sample
from musicrec.errors import PipelineError, TransientError
from musicrec.sources import SAMPLE_ARCHIVE, resolve_dataset_url

JOBS = Path(__file__).resolve().parents[2] / "spark_jobs"


def _hash12(run_id):
    import hashlib

    return hashlib.sha256(run_id.encode()).hexdigest()[:12]


def test_run_ids_become_safe_folder_names(tmp_path):
    airflow_id = "manual__2026-01-01T00:00:00+00:00"
    assert paths.safe_name(airflow_id) == f"manual__2026-01-01T00_00_00_00_00-h{_hash12(airflow_id)}"
    assert paths.run_dir(tmp_path, "scheduled__x/../y") == tmp_path / "runs" / f"scheduled__x_.._y-h{_hash12('scheduled__x/../y')}"
    assert paths.safe_name("plain_run-1.2") == "plain_run-1.2"  # nothing to change: no suffix
    with pytest.raises(ValueError):
        paths.safe_name("::")


def test_distinct_run_ids_never_share_a_folder():
    clean_lookalike = f"a_b-h{_hash12('a:b')}"  # a clean ID spelled like the sanitised form of "a:b"
    ids = ["a:b", "a+b", "a_b", "a b", "a__b", "_a_b", "a_b.", clean_lookalike, "a_b-h0123456789ab",
           "manual__2026-01-01T00:00:00+00:00", "manual__2026-01-01T00_00_00_00_00", "manual__2026-01-01T00:00:00-00:00"]
    names = [paths.safe_name(run_id) for run_id in ids]
    assert len(set(names)) == len(ids), dict(zip(ids, names))
    assert all(paths.safe_name(run_id) == name for run_id, name in zip(ids, names))  # stable


def test_staged_dir_replaces_only_on_success(tmp_path):
    final = tmp_path / "step"
    with paths.staged_dir(final) as out:
        (out / "a").write_text("first")
    with pytest.raises(RuntimeError):
        with paths.staged_dir(final) as out:
            (out / "a").write_text("half-written")
            raise RuntimeError("crash")
    assert (final / "a").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["step"]  # no staging leftovers
    with paths.staged_dir(final) as out:
        (out / "b").write_text("second")
    assert sorted(p.name for p in final.iterdir()) == ["b"]


def test_result_contract(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        result.write_result(tmp_path / "r.json", "extract", {"dataset_dir": "/x"})
    result.write_result(tmp_path / "r.json", "extract", {"dataset_dir": "/x", "file_count": 2, "dataset_bytes": 50, "estimated_rows": 2})
    assert result.read_result(tmp_path / "r.json")["file_count"] == 2
    result.write_error(tmp_path / "e.json", "download", "HTTP 404", retryable=False)
    with pytest.raises(PipelineError, match="HTTP 404") as error:
        result.read_result(tmp_path / "e.json")
    assert not isinstance(error.value, TransientError)
    result.write_error(tmp_path / "t.json", "download", "reset", retryable=True)
    with pytest.raises(TransientError):
        result.read_result(tmp_path / "t.json")


def test_embedded_sample_is_reproducible_and_default():
    assert SAMPLE_ARCHIVE.read_bytes() == sample.build_zip(), "run: python scripts/make_sample.py"
    assert resolve_dataset_url("") == SAMPLE_ARCHIVE.as_uri()
    assert resolve_dataset_url(" https://x/y.zip ") == "https://x/y.zip"


def test_dataset_url_names_the_logical_date():
    day = "2026-03-02T00:00:00+00:00"
    assert resolve_dataset_url("http://h/plays-{{ ds }}.zip", day) == "http://h/plays-2026-03-02.zip"
    assert resolve_dataset_url("http://h/{{ds_nodash}}/p.zip", day) == "http://h/20260302/p.zip"
    with pytest.raises(PipelineError, match=r"may use only \{\{ ds \}\}"):
        resolve_dataset_url("http://h/{{ yesterday }}.zip", day)  # unknown: an error, not ""
    with pytest.raises(PipelineError, match="not a valid template"):
        resolve_dataset_url("http://h/{{ ds ", day)
    with pytest.raises(PipelineError, match="no logical date"):
        resolve_dataset_url("http://h/{{ ds }}.zip", None)


def _run_job(script, *args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(JOBS)}
    return subprocess.run([sys.executable, str(JOBS / script), *args], capture_output=True, text=True, env=env, timeout=60,
                          cwd=cwd)


@pytest.mark.parametrize("script", [f"{step}.py" for step in result.STEPS])
def test_every_job_has_help(script):
    done = _run_job(script, "--help")
    assert done.returncode == 0, done.stderr
    assert "--run-dir" in done.stdout and "--result-file" in done.stdout


def test_bad_input_is_a_message_and_exit_2_not_a_trace(tmp_path):
    done = _run_job("download.py", "--run-dir", str(tmp_path), "--result-file", str(tmp_path / "r.json"), "--url", "ftp://x/y.zip")
    assert done.returncode == 2
    assert "ERROR in step 'download'" in done.stderr and "Traceback" not in done.stderr
    assert "only http, https and file" in json.loads((tmp_path / "r.json").read_text())["error"]


@pytest.mark.parametrize("result_flag", ["--result-file", "--result-file="])
def test_a_bad_argument_is_recorded_as_bad_input_not_retried(tmp_path, result_flag):
    """argparse's own refusal (here ranking_users 500) must reach the result file as non-retryable:
    without it the operator finds no result and retries a command line that cannot change."""
    result_args = [result_flag + str(tmp_path / "r.json")] if result_flag.endswith("=") else [result_flag, str(tmp_path / "r.json")]
    done = _run_job("train.py", "--run-dir", str(tmp_path), *result_args, "--interactions", str(tmp_path / "i"),
                    "--ranking-users", "500", cwd=tmp_path)
    assert done.returncode == 2
    assert "usage: train.py" in done.stderr and "Traceback" not in done.stderr
    recorded = json.loads((tmp_path / "r.json").read_text())
    assert recorded["retryable"] is False and recorded["step"] == "train"
    assert "bad argument: argument --ranking-users: ranking_users is 500" in recorded["error"]
    with pytest.raises(PipelineError, match="ranking_users is 500"):
        result.read_result(tmp_path / "r.json")


@pytest.mark.parametrize("args", [
    ["--ranking-users", "500"],  # no --result-file at all
    ["--result-file", "--interactions", "i"],  # the option's value missing: not a file named --interactions
    ["--result-file=", "--ranking-users", "500"],
])
def test_a_bad_argument_without_a_result_file_writes_nothing_and_exits_2(tmp_path, args):
    done = _run_job("train.py", "--run-dir", str(tmp_path / "run"), *args, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "usage: train.py" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_result_file_that_cannot_be_written_still_gives_argparses_message(tmp_path):
    (tmp_path / "r.json").mkdir()  # a folder where the result file should go
    done = _run_job("train.py", "--run-dir", str(tmp_path), "--result-file", str(tmp_path / "r.json"),
                    "--interactions", "i", "--ranking-users", "500", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "could not record the bad argument" in done.stderr and "ranking_users is 500" in done.stderr


def test_the_last_result_file_given_is_the_one_written(tmp_path):
    done = _run_job("train.py", "--run-dir", str(tmp_path), "--result-file", str(tmp_path / "first.json"),
                    "--result-file", str(tmp_path / "last.json"), "--interactions", "i", "--ranking-users", "500", cwd=tmp_path)
    assert done.returncode == 2
    assert not (tmp_path / "first.json").exists() and json.loads((tmp_path / "last.json").read_text())["retryable"] is False
