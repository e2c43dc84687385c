"""pyspark imported from its installed, compiled files instead of Spark's zips of the same sources.

spark-submit puts `$SPARK_HOME/python/lib/pyspark.zip` and py4j's zip first on the PYTHONPATH of
the driver and of every Python worker daemon. Python compiles a module imported from a zip from
source every time (it writes no bytecode cache there): 0.75 s for the driver's imports and 0.6 s for
a worker daemon's, in every step. With pip's pyspark, SPARK_HOME is the installed package itself
and the zips hold the same files, already compiled in its __pycache__ folders.

Installed once per environment (`make install`, the Docker image) by `python -m
musicrec.pyspark_bytecode`: a .pth file in this Python's site-packages whose one line drops exactly
those two zips from sys.path when a process starts, so the installed package is imported instead.
It is written only after checking that every module in the zips is byte-identical to the
installed file (pip's pyspark-client overwrites some of them; `make install` puts them back): the
swap can change how long an import takes, never what runs. Any other Spark installation, and any
Python without the file, imports from the zips as before.
"""

from __future__ import annotations

import sys
import sysconfig
import zipfile
from pathlib import Path

PTH_NAME = "musicrec-pyspark-bytecode.pth"
# Modules the wheel leaves out: the zips carry Spark's test suites and a streaming benchmark.
_NOT_INSTALLED = ("/tests/", "/benchmark/")


def spark_zips(site_packages: Path) -> list[Path]:
    """pip's pyspark's own zips of pyspark and py4j sources."""
    return sorted((site_packages / "pyspark" / "python" / "lib").glob("*.zip"))


def differences(site_packages: Path) -> list[str]:
    """Modules of the zips that the installed packages lack or hold with other bytes."""
    found = []
    for archive in spark_zips(site_packages):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if not name.endswith(".py") or any(part in name for part in _NOT_INSTALLED):
                    continue
                installed = site_packages / name
                if not installed.is_file() or installed.read_bytes() != zipped.read(name):
                    found.append(f"{archive.name}:{name}")
    return found


def pth_line(site_packages: Path) -> str:
    """The line site.py runs at start-up: drop the zips under `site_packages`'s pyspark from sys.path."""
    lib = f"{site_packages / 'pyspark' / 'python' / 'lib'}/"
    # One statement without names of its own: site.py execs each line in a function's scope,
    # where a comprehension cannot see a variable assigned on the same line.
    return f"import sys; sys.path[:] = [p for p in sys.path if not (p.startswith({lib!r}) and p.endswith('.zip'))]\n"


def install(site_packages: Path | None = None) -> Path | None:
    """Write the .pth file into `site_packages` (default: this Python's); return its path, or None
    (and remove a stale one) when the zips are missing or differ from the installed files."""
    site_packages = Path(site_packages or sysconfig.get_paths()["purelib"])
    target = site_packages / PTH_NAME
    if not spark_zips(site_packages):
        target.unlink(missing_ok=True)
        print(f"pyspark's zips are not under {site_packages}: nothing to do")
        return None
    if found := differences(site_packages):
        target.unlink(missing_ok=True)
        print(f"WARNING: pyspark's installed files differ from its zips ({', '.join(found[:3])}, "
              f"{len(found)} in all): Python keeps importing the zips (slower). Reinstall pyspark.")
        return None
    target.write_text(pth_line(site_packages))
    return target


if __name__ == "__main__":
    written = install()
    if written is not None:
        print(f"pyspark imported from its compiled files: {written}")
    sys.exit(0)
