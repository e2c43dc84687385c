"""pyspark imported from its installed, compiled files instead of Spark's zips of the same sources.

spark-submit puts `$SPARK_HOME/python/lib/pyspark.zip` and py4j's zip on the PYTHONPATH of the
driver (after --py-files) and first on that of every Python worker daemon. Python compiles a
module imported from a zip from source every time (it writes no bytecode cache there): 0.75 s
for the driver's imports and 0.6 s for a worker daemon's, in every step. With pip's pyspark,
SPARK_HOME is the installed package itself and the zips hold the same files, already compiled
in its __pycache__ folders.

Installed once per environment (`make install`, the Docker image) by `python -m
musicrec.pyspark_bytecode`: this file is copied into site-packages as HOOK_MODULE, and a .pth
file (PTH_NAME) makes every Python process import it at start-up and call `drop_spark_zips`,
which removes exactly those two zips from sys.path. Both are written only after checking that
every file in the zips is byte-identical to the installed one (pip's pyspark-client overwrites
some of them; `make install` puts them back), and the hook drops the zips only while pip's
records of pyspark, pyspark-client and py4j are the ones seen at that check: any later install,
upgrade or removal of them turns it into a no-op until `make install` checks again. So the swap
can change how long an import takes, never what runs. Any other Spark installation keeps its
zips. To undo it, delete PTH_NAME from site-packages.

Only `os` and `sys` are imported at module level: every Python process of the environment
imports this module.
"""

from __future__ import annotations

import os
import sys

PTH_NAME = "musicrec-pyspark-bytecode.pth"
HOOK_MODULE = "musicrec_pyspark_bytecode"
# Files the wheel leaves out: the zips carry Spark's test suites, a streaming benchmark, a README
# and a CSV registry no module reads.
_NOT_INSTALLED = ("/tests/", "/benchmark/")
_MAY_BE_MISSING = (".md", ".csv")
_PACKAGES = ("pyspark", "py4j")  # their dist-info records (pyspark_client's too) make the fingerprint


def spark_zip_dir(site_packages) -> str:
    """Where pip's pyspark keeps its zips of the pyspark and py4j sources (real path)."""
    return os.path.realpath(os.path.join(site_packages, "pyspark", "python", "lib"))


def fingerprint(site_packages) -> str:
    """pip's records of the pyspark and py4j distributions here: names, sizes and change times.
    Any install, upgrade or removal of them changes it."""
    parts = []
    for name in sorted(os.listdir(site_packages)):
        if name.endswith(".dist-info") and name.lower().startswith(_PACKAGES):
            try:
                stat = os.stat(os.path.join(site_packages, name, "RECORD"))
            except OSError:
                parts.append(f"{name}:-")
                continue
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return ";".join(parts)


def drop_spark_zips(site_packages: str, expected_fingerprint: str) -> None:
    """What the .pth file runs at start-up: remove pip's pyspark's own zips from sys.path, unless
    the pyspark or py4j installation changed since the check (then nothing is touched)."""
    try:
        lib = spark_zip_dir(site_packages)
        zips = {p for p in sys.path if p.endswith(".zip") and os.path.realpath(os.path.dirname(p)) == lib}
        # Most processes (Airflow's, the tests') have no Spark zip on their path: they skip pip's records.
        if zips and fingerprint(site_packages) == expected_fingerprint:
            sys.path[:] = [p for p in sys.path if p not in zips]
    except Exception:  # never stop a Python process from starting
        return


def spark_zips(site_packages) -> list:
    """pip's pyspark's own zips of pyspark and py4j sources."""
    from pathlib import Path

    return sorted(Path(spark_zip_dir(site_packages)).glob("*.zip"))


def differences(site_packages) -> list[str]:
    """Files of the zips that the installed packages hold with other bytes, or lack (other than
    the test suites and the few data files no module reads)."""
    import zipfile
    from pathlib import Path

    found = []
    for archive in spark_zips(site_packages):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if name.endswith("/") or any(part in name for part in _NOT_INSTALLED):
                    continue
                installed = Path(site_packages) / name
                if not installed.is_file():
                    if not name.endswith(_MAY_BE_MISSING):
                        found.append(f"{archive.name}:{name} (missing)")
                elif installed.read_bytes() != zipped.read(name):
                    found.append(f"{archive.name}:{name}")
    return found


def pth_line(site_packages) -> str:
    """The .pth line site.py runs at start-up: import the hook, drop the zips."""
    site_packages = os.path.realpath(site_packages)
    return (f"import {HOOK_MODULE}; {HOOK_MODULE}.drop_spark_zips({site_packages!r}, "
            f"{fingerprint(site_packages)!r})\n")


def install(site_packages=None):
    """Copy this module into `site_packages` (default: this Python's) and write the .pth file;
    return the .pth's path, or None (removing an earlier one) when the zips are missing or differ
    from the installed files."""
    import sysconfig
    from pathlib import Path

    site_packages = Path(site_packages or sysconfig.get_paths()["purelib"])
    target, hook = site_packages / PTH_NAME, site_packages / f"{HOOK_MODULE}.py"
    target.unlink(missing_ok=True)  # first: a stale .pth never outlives a failed check
    if not spark_zips(site_packages):
        print(f"pyspark's zips are not under {site_packages}: nothing to do")
        return None
    if found := differences(site_packages):
        print(f"WARNING: pyspark's installed files differ from its zips ({', '.join(found[:3])}, "
              f"{len(found)} in all): Python keeps importing the zips (slower). Reinstall pyspark.")
        return None
    hook.write_text(Path(__file__).read_text())
    target.write_text(pth_line(site_packages))
    return target


if __name__ == "__main__":
    written = install()
    if written is not None:
        print(f"pyspark imported from its compiled files: {written}")
    # --require (the Docker image): a build that cannot apply it fails instead of running slower.
    sys.exit(1 if written is None and "--require" in sys.argv[1:] else 0)
