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


def test_run_ids_become_safe_folder_names(tmp_path):
    assert paths.safe_name("manual__2026-01-01T00:00:00+00:00") == "manual__2026-01-01T00_00_00_00_00"
    assert paths.run_dir(tmp_path, "scheduled__x/../y") == tmp_path / "runs" / "scheduled__x_.._y"
    with pytest.raises(ValueError):
        paths.safe_name("::")


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


def test_publish_file_and_model_link(tmp_path):
    source = tmp_path / "new.csv"
    source.write_text("new")
    published = tmp_path / "pub" / "recommended_songs.csv"
    paths.publish_file(source, published)
    assert published.read_text() == "new"
    model = tmp_path / "runs" / "r1" / "train" / "model"
    model.mkdir(parents=True)
    (model / "weights").write_text("v1")
    link = paths.publish_dir_as_link(model, tmp_path / "pub" / "models", tmp_path / "pub" / "model", label="r1")
    (model / "weights").write_text("changed by a re-run")
    assert (link / "weights").read_text() == "v1"  # a copy: the run folder can change freely
    for i in range(5):
        paths.publish_dir_as_link(model, tmp_path / "pub" / "models", link, label=f"r{i}", keep=3)
    assert len(list((tmp_path / "pub" / "models").iterdir())) == 3


def test_result_contract(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        result.write_result(tmp_path / "r.json", "extract", {"dataset_dir": "/x"})
    result.write_result(tmp_path / "r.json", "extract", {"dataset_dir": "/x", "file_count": 2})
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


def _run_job(script, *args):
    env = {**os.environ, "PYTHONPATH": str(JOBS)}
    return subprocess.run([sys.executable, str(JOBS / script), *args], capture_output=True, text=True, env=env, timeout=60)


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
