"""pyspark imported from its installed, compiled files instead of Spark's zips: the .pth file drops
exactly pip's pyspark's own zips from sys.path (also reached through a symlink), is written only
when they hold the installed files byte for byte, stops acting when pip changes pyspark, py4j or
pyspark-client afterwards, and, as `make install` writes it, takes effect in a spark-submit's
driver and Python workers."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from musicrec import pyspark_bytecode

MODULE = b"VALUE = 1\n"


def fake_site(root, installed=MODULE, zipped=MODULE, extra=None):
    """A site-packages with pyspark's layout: a package, its zips (with files the wheel leaves
    out) and pip's records. `extra`: more zip entries, name -> (zipped bytes, installed bytes or None)."""
    site = root / "site-packages"
    (site / "pyspark" / "python" / "lib").mkdir(parents=True)
    (site / "pyspark" / "__init__.py").write_bytes(b"")
    entries = {"pyspark/__init__.py": (b"", b""), "pyspark/values.py": (zipped, installed),
               "pyspark/sql/tests/test_values.py": (b"assert True\n", None), "pyspark/messages/README.md": (b"# x\n", None),
               **(extra or {})}
    with zipfile.ZipFile(site / "pyspark" / "python" / "lib" / "pyspark.zip", "w") as archive:
        for name, (in_zip, on_disk) in entries.items():
            archive.writestr(name, in_zip)
            if on_disk is not None:
                (site / name).parent.mkdir(parents=True, exist_ok=True)
                (site / name).write_bytes(on_disk)
    with zipfile.ZipFile(site / "pyspark" / "python" / "lib" / "py4j-0.10.9.9-src.zip", "w") as archive:
        archive.writestr("py4j/__init__.py", b"")
    (site / "py4j").mkdir()
    (site / "py4j" / "__init__.py").write_bytes(b"")
    for name in ("pyspark-4.3.0.dist-info", "py4j-0.10.9.9.dist-info"):
        (site / name).mkdir()
        (site / name / "RECORD").write_text(f"{name}\n")
    return site


def sys_path_after_site(site, python_path):
    """sys.path once site.py has processed `site`'s .pth files, as it does at start-up."""
    code = f"import site, sys; site.addsitedir({str(site)!r}); print(repr(sys.path))"
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(map(str, python_path))})
    return ast.literal_eval(done.stdout.strip())


def test_the_pth_file_drops_exactly_the_installed_pysparks_zips(tmp_path):
    site = fake_site(tmp_path)
    assert pyspark_bytecode.install(site) == site / pyspark_bytecode.PTH_NAME
    zips = pyspark_bytecode.spark_zips(site)
    linked = tmp_path / "linked-lib"  # the same folder reached through a symlink
    linked.symlink_to(site / "pyspark" / "python" / "lib")
    elsewhere = tmp_path / "spark-home" / "python" / "lib" / "pyspark.zip"  # another Spark installation
    library = tmp_path / "run" / "lib" / "musicrec.zip"  # --py-files
    path = sys_path_after_site(site, [library, *zips, linked / "pyspark.zip", elsewhere])
    assert len(zips) == 2 and not {*map(str, zips), str(linked / "pyspark.zip")} & set(path)
    assert str(library) in path and str(elsewhere) in path and str(site) in path


@pytest.mark.parametrize("change", ["pyspark upgraded", "pyspark-client installed", "py4j removed"])
def test_the_zips_stay_once_pip_changes_pyspark_or_py4j(tmp_path, change):
    site = fake_site(tmp_path)
    pyspark_bytecode.install(site)
    zips = pyspark_bytecode.spark_zips(site)
    if change == "pyspark upgraded":
        (site / "pyspark-4.3.0.dist-info" / "RECORD").write_text("pyspark-4.3.0.dist-info\nnew\n")
    elif change == "pyspark-client installed":
        (site / "pyspark_client-4.2.0.dist-info").mkdir()
        (site / "pyspark_client-4.2.0.dist-info" / "RECORD").write_text("x\n")
    else:
        (site / "py4j-0.10.9.9.dist-info" / "RECORD").unlink()
    assert set(map(str, zips)) <= set(sys_path_after_site(site, zips))


def test_nothing_is_written_when_a_file_differs_or_is_missing(tmp_path):
    for name, site in {
        "a module differs": fake_site(tmp_path / "a", installed=b"VALUE = 2\n"),
        "a module is missing": fake_site(tmp_path / "b", installed=None),
        "a data file differs": fake_site(tmp_path / "c", extra={"pyspark/errors/conditions.json": (b"{}", b'{"a": 1}')}),
        "a data file is missing": fake_site(tmp_path / "d", extra={"pyspark/errors/conditions.json": (b"{}", None)}),
    }.items():
        stale = site / pyspark_bytecode.PTH_NAME
        stale.write_text("import sys\n")  # written before pyspark was overwritten
        assert len(pyspark_bytecode.differences(site)) == 1, name
        assert pyspark_bytecode.install(site) is None and not stale.exists(), name
    # Test suites, READMEs and CSVs may be left out of the wheel.
    assert pyspark_bytecode.differences(fake_site(tmp_path / "e", extra={"pyspark/sql/registry.csv": (b"a\n", None)})) == []


def test_without_spark_zips_nothing_is_written(tmp_path):
    (tmp_path / "pyspark").mkdir()
    assert pyspark_bytecode.install(tmp_path) is None and not (tmp_path / pyspark_bytecode.PTH_NAME).exists()


def test_a_spark_submit_imports_pyspark_from_its_compiled_files(tmp_path):
    """As `make install` leaves this environment: the driver and a Python worker import pyspark
    and py4j from site-packages, whose compiled files exist."""
    site = sysconfig.get_paths()["purelib"]
    if not os.path.isfile(os.path.join(site, pyspark_bytecode.PTH_NAME)):
        if os.environ.get("MUSICREC_REQUIRE_DEPLOY_TOOLS"):  # CI: make install writes it
            pytest.fail(f"no {pyspark_bytecode.PTH_NAME} in {site}: `make install` should have written it")
        pytest.skip(f"no {pyspark_bytecode.PTH_NAME} in {site} (make install writes it)")
    assert pyspark_bytecode.differences(site) == []
    import pyspark

    assert Path(importlib.util.cache_from_source(pyspark.__file__)).is_file()
    job = tmp_path / "where.py"
    job.write_text(
        "import pyspark, py4j\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "worker = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__('pyspark').__file__).collect()[0]\n"
        "print('WHERE', pyspark.__file__, py4j.__file__, worker)\n"
        "spark.stop()\n"
    )
    spark_submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    done = subprocess.run(
        [spark_submit, "--master", "local[1]", "--conf", f"spark.pyspark.python={sys.executable}",
         "--conf", "spark.ui.enabled=false", str(job)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    where = [line for line in done.stdout.splitlines() if line.startswith("WHERE ")]
    assert done.returncode == 0 and where, done.stderr[-3000:]
    driver_pyspark, driver_py4j, worker_pyspark = where[0].split()[1:]
    for path in (driver_pyspark, driver_py4j, worker_pyspark):
        assert ".zip" not in path and os.path.realpath(path).startswith(os.path.realpath(site)), where[0]
