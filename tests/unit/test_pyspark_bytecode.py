"""pyspark imported from its installed, compiled files instead of Spark's zips: the .pth file drops
exactly pip's pyspark's own zips from sys.path, is written only when they hold the installed
files byte for byte, and, as `make install` writes it, takes effect for a process started with
spark-submit's PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from musicrec import pyspark_bytecode

MODULE = b"VALUE = 1\n"


def fake_site(root, installed=MODULE, zipped=MODULE, test_module=True):
    """A site-packages with pyspark's layout: a package, its zips, a test module only in the zip."""
    site = root / "site-packages"
    (site / "pyspark" / "python" / "lib").mkdir(parents=True)
    (site / "pyspark" / "__init__.py").write_bytes(b"")
    if installed is not None:
        (site / "pyspark" / "values.py").write_bytes(installed)
    with zipfile.ZipFile(site / "pyspark" / "python" / "lib" / "pyspark.zip", "w") as archive:
        archive.writestr("pyspark/__init__.py", b"")
        archive.writestr("pyspark/values.py", zipped)
        if test_module:  # the wheel leaves Spark's test suites out
            archive.writestr("pyspark/sql/tests/test_values.py", b"assert True\n")
    with zipfile.ZipFile(site / "pyspark" / "python" / "lib" / "py4j-0.10.9.9-src.zip", "w") as archive:
        archive.writestr("py4j/__init__.py", b"")
    (site / "py4j").mkdir()
    (site / "py4j" / "__init__.py").write_bytes(b"")
    return site


def sys_path_after_site(site, python_path):
    """sys.path once site.py has processed `site`'s .pth files, as it does at start-up."""
    code = f"import site, sys; site.addsitedir({str(site)!r}); print(repr(sys.path))"
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(map(str, python_path))})
    return eval(done.stdout)


def test_the_pth_file_drops_exactly_the_installed_pysparks_zips(tmp_path):
    site = fake_site(tmp_path)
    assert pyspark_bytecode.install(site) == site / pyspark_bytecode.PTH_NAME
    zips = pyspark_bytecode.spark_zips(site)
    elsewhere = tmp_path / "spark-home" / "python" / "lib" / "pyspark.zip"  # another Spark installation
    library = tmp_path / "run" / "lib" / "musicrec.zip"  # --py-files
    path = sys_path_after_site(site, [library, *zips, elsewhere])
    assert not set(map(str, zips)) & set(path)
    assert str(library) in path and str(elsewhere) in path and str(site) in path


def test_nothing_is_written_when_a_module_differs_or_is_missing(tmp_path):
    for name, site in {
        "differs": fake_site(tmp_path / "a", installed=b"VALUE = 2\n"),
        "missing": fake_site(tmp_path / "b", installed=None),
    }.items():
        stale = site / pyspark_bytecode.PTH_NAME
        stale.write_text("import sys\n")  # written before pyspark was overwritten
        assert pyspark_bytecode.differences(site) == ["pyspark.zip:pyspark/values.py"], name
        assert pyspark_bytecode.install(site) is None and not stale.exists(), name
    assert pyspark_bytecode.differences(fake_site(tmp_path / "c")) == []  # test suites may be left out


def test_without_spark_zips_nothing_is_written(tmp_path):
    (tmp_path / "pyspark").mkdir()
    assert pyspark_bytecode.install(tmp_path) is None and not (tmp_path / pyspark_bytecode.PTH_NAME).exists()


def test_this_environment_imports_pyspark_from_its_compiled_files():
    site = sysconfig.get_paths()["purelib"]
    if not os.path.isfile(os.path.join(site, pyspark_bytecode.PTH_NAME)):
        if os.environ.get("MUSICREC_REQUIRE_DEPLOY_TOOLS"):  # CI: make install writes it
            pytest.fail(f"no {pyspark_bytecode.PTH_NAME} in {site}: `make install` should have written it")
        pytest.skip(f"no {pyspark_bytecode.PTH_NAME} in {site} (make install writes it)")
    from pathlib import Path

    assert pyspark_bytecode.differences(Path(site)) == []
    zips = os.pathsep.join(map(str, pyspark_bytecode.spark_zips(Path(site))))  # spark-submit's PYTHONPATH
    done = subprocess.run([sys.executable, "-c", "import pyspark.sql, py4j; print(pyspark.__file__, py4j.__file__)"],
                          capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": zips})
    assert ".zip" not in done.stdout and done.stdout.startswith(site), done.stdout
