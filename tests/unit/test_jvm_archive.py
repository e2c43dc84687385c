"""The driver JVM's class-data-sharing archive: found where it is built, turned off on request, and,
as `make install` builds it, actually mapped by a spark-submit (the JVM refuses to start under
-Xshare:on when it cannot use the archive)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from musicrec import jvm_archive
from musicrec.spark_config import SPARK_CONF
from support import ROOT


def test_sharing_options_name_the_archive_only_when_it_exists(tmp_path, monkeypatch):
    archive = tmp_path / "spark-driver.jsa"
    monkeypatch.setenv(jvm_archive.ARCHIVE_ENV, str(archive))
    assert jvm_archive.sharing_options() == ""  # not built yet: the JVM starts as usual
    archive.write_bytes(b"x")
    assert jvm_archive.sharing_options() == f" -XX:SharedArchiveFile={archive}"
    monkeypatch.setenv(jvm_archive.ARCHIVE_ENV, "")
    assert jvm_archive.archive_path() is None and jvm_archive.sharing_options() == ""


def test_default_archive_lives_beside_this_pythons_packages(monkeypatch):
    monkeypatch.delenv(jvm_archive.ARCHIVE_ENV, raising=False)
    assert jvm_archive.archive_path() == jvm_archive.Path(sys.prefix) / "share" / "musicrec" / "spark-driver.jsa"


def test_the_built_archive_is_mapped_by_a_spark_submit():
    options = SPARK_CONF["spark.driver.extraJavaOptions"]
    if "SharedArchiveFile" not in options:
        if os.environ.get("MUSICREC_REQUIRE_DEPLOY_TOOLS"):  # CI: make install builds it
            pytest.fail(f"no JVM archive at {jvm_archive.archive_path()}: `make install` should have built it")
        pytest.skip(f"no JVM archive at {jvm_archive.archive_path()} (make install builds it)")
    import pyspark

    spark_submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    conf = {**SPARK_CONF, "spark.driver.extraJavaOptions": options + " -Xshare:on", "spark.pyspark.python": sys.executable}
    command = [spark_submit, "--master", "local[1]"] + [arg for k, v in conf.items() for arg in ("--conf", f"{k}={v}")]
    done = subprocess.run(
        [*command, str(ROOT / "bench" / "trivial_job.py")], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "spark_jobs")},
    )
    assert done.returncode == 0, f"the driver could not map {jvm_archive.archive_path()}:\n{done.stderr[-3000:]}"
