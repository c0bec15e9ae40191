"""Checks a built pytest-workmail-pat wheel, run by scripts/test.sh with the Python of the venv it was installed in:
the wheel carries exactly one executable, `workmail-pat`, and the plugin package; the installed distribution
registers the pytest11 entry point; and the plugin finds the installed binary (not a development build)."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import entry_points
from pathlib import Path


def main(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    scripts = sorted(n.rsplit("/", 1)[1] for n in names if ".data/scripts/" in n)
    assert scripts == ["workmail-pat"], f"executables in the wheel: {scripts}"
    assert "pytest_workmail_pat/plugin.py" in names, names

    eps = [ep for ep in entry_points(group="pytest11") if ep.name == "workmail_pat"]
    assert [ep.value for ep in eps] == ["pytest_workmail_pat.plugin"], eps

    os.environ.pop("WORKMAIL_PAT_BIN", None)
    from pytest_workmail_pat import find_binary

    found = Path(find_binary())
    expected = Path(sysconfig.get_path("scripts")) / "workmail-pat"
    assert found == expected, (found, expected)
    out = subprocess.run([str(found), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "serve" in out.stdout, out
    print(f"wheel ok: {Path(wheel).name} ({Path(wheel).stat().st_size // 1024} KiB), binary {found}")


if __name__ == "__main__":
    main(sys.argv[1])
