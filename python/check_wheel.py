"""Checks a built pytest-workmail-pat wheel, run by scripts/test.sh with the Python of the venv it was installed in:
the wheel is tagged manylinux2014 (glibc 2.17) or older and `auditwheel show` agrees (no external shared library,
no versioned symbol newer than glibc 2.17: the binary is static); the wheel carries exactly one executable,
`workmail-pat`, and the plugin package; the installed distribution registers the pytest11 entry point; and the
plugin finds the installed binary (not a development build).

    check_wheel.py [--auditwheel PATH] WHEEL
"""

import argparse
import os
import re
import subprocess
import sysconfig
import zipfile
from importlib.metadata import entry_points
from pathlib import Path


# The oldest glibc the wheel may need: manylinux2014.
MAX_GLIBC = (2, 17)
LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def glibc_of(platform_tag: str) -> tuple[int, int]:
    """The glibc version a platform tag promises to need at most (`manylinux_2_17_x86_64`, `manylinux2014_x86_64`)."""
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_\w+", platform_tag)
    if m:
        return int(m[1]), int(m[2])
    legacy = platform_tag.split("_", 1)[0]
    assert legacy in LEGACY, f"not a manylinux platform tag: {platform_tag}"
    return LEGACY[legacy]


def check_platform(wheel: str, auditwheel: str | None) -> None:
    platforms = Path(wheel).name[: -len(".whl")].split("-")[-1].split(".")
    for tag in platforms:
        assert glibc_of(tag) <= MAX_GLIBC, f"{Path(wheel).name}: {tag} needs a glibc newer than 2.17"
    print(f"wheel platform tags: {', '.join(platforms)}")
    if auditwheel is None:
        return
    out = subprocess.run([auditwheel, "show", wheel], capture_output=True, text=True, timeout=120)
    report = " ".join((out.stdout + out.stderr).split())
    print(f"auditwheel show: {report}")
    assert out.returncode == 0, report
    consistent = re.search(r'consistent with the following platform tag: "([^"]+)"', report)
    assert consistent and glibc_of(consistent[1]) <= MAX_GLIBC, report
    # A static binary: nothing from the machine's libraries, not even glibc.
    assert "requires no external shared libraries" in report, report
    assert "references no external versioned symbols" in report, report


def main(wheel: str, auditwheel: str | None) -> None:
    check_platform(wheel, auditwheel)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auditwheel", help="the auditwheel program; without it only the tag is checked")
    parser.add_argument("wheel")
    args = parser.parse_args()
    main(args.wheel, args.auditwheel)
