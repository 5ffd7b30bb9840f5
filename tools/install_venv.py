"""Install the project and its dependencies into a virtual environment, the wheels unpacked in parallel.

`make venv` runs it with the new environment's Python. pip installs wheels one after another, and PyTorch's CUDA
build (the one pip takes on Linux x86_64) is 2.9 GB of wheels that unpack to about 5.6 GB: about 40 s of one core
on this project's machines, the larger part of a fresh clone's setup. Here pip resolves the requirements once
(its own resolver: `pip install --dry-run --report`), then several pip processes (`--no-deps`) each unpack a share
of the wheels, and the project itself is installed last (editable). Wheels that would write the same file go to
the same process, so that no two processes ever write one path.

Anything else (a pip without `--report`, a requirement that is not a wheel on this disk, a step that fails) falls
back to one plain `pip install -e .[EXTRAS]`, which installs whatever is still missing: the parallel path is a
shortcut, never the only way in.

    python tools/install_venv.py [--extras test] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]  # the project (--project for another)
PIP = [sys.executable, "-m", "pip"]
# pip repeats this for every index page it cannot find on a file:// index; it says nothing about the install
NOISE = "is ignored: it is neither a file nor a directory"


class Unresolvable(Exception):
    """pip found no set of versions for the requirements (and said why)."""


def say(message: str) -> None:
    print(f"install_venv: {message}", file=sys.stderr, flush=True)


def pip(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*PIP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> bool:
    out, _ = proc.communicate()
    for line in out.splitlines():
        if NOISE not in line:
            print(line, file=sys.stderr)
    return proc.returncode == 0


def requirements(project: Path, extras: list[str]) -> tuple[list[str], list[str]]:
    """The project's dependencies with the extras asked for, and its build requirements."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    project = meta["project"]
    deps = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in project.get("optional-dependencies", {}):
            raise ValueError(f"pyproject.toml has no extra {extra!r}")
        deps += project["optional-dependencies"][extra]
    return deps, list(meta.get("build-system", {}).get("requires", []))


def resolve(reqs: list[str], downloads: Path) -> list[Path] | None:
    """The wheels pip would install for `reqs` (pip's resolver, nothing installed), those from an index online
    downloaded into `downloads` (their hashes checked); None where any is not a wheel."""
    report = downloads / "report.json"
    if not finish(pip("install", "-q", "--dry-run", "--report", str(report), *reqs)):
        raise Unresolvable  # pip has said why; a plain install would only say it again
    wheels, remote = [], []
    for item in json.loads(report.read_text())["install"]:
        info = item["download_info"]
        url = urlparse(info["url"])
        if not url.path.endswith(".whl"):
            say(f"{item['metadata']['name']} is not a wheel there: one plain pip install instead")
            return None
        if url.scheme == "file":
            wheels.append(Path(unquote(url.path)))
        else:
            digest = "".join(f"#{k}={v}" for k, v in list(info.get("archive_info", {}).get("hashes", {}).items())[:1])
            remote.append(info["url"] + digest)
    if remote:
        if not finish(pip("download", "-q", "--no-deps", "--dest", str(downloads / "wheels"), *remote)):
            return None
        wheels += sorted((downloads / "wheels").glob("*.whl"))
    return wheels


def written_paths(wheel: Path) -> set[str]:
    """The paths a wheel writes, relative to the environment (its scripts and entry points under bin/)."""
    paths = set()
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            head, _, rest = name.partition("/")
            if head.endswith(".data") and rest:
                scheme, _, rest = rest.partition("/")
                name = f"bin/{rest}" if scheme == "scripts" else rest if scheme in ("purelib", "platlib") else \
                    f"{scheme}:{rest}"
            elif head.endswith(".dist-info") and rest == "entry_points.txt":
                section = None
                for line in z.read(name).decode("utf-8", "replace").splitlines():
                    line = line.strip()
                    if line.startswith("["):
                        section = line.strip("[]")
                    elif section in ("console_scripts", "gui_scripts") and "=" in line:
                        paths.add(f"bin/{line.split('=')[0].strip()}")
            if not name.endswith("/"):
                paths.add(name)
    return paths


def shares(wheels: list[Path], jobs: int) -> list[list[Path]]:
    """`jobs` lists of wheels, about equal in bytes; wheels that write a common path in the same list."""
    parent = {w: w for w in wheels}

    def root(w: Path) -> Path:
        while parent[w] != w:
            parent[w] = parent[parent[w]]
            w = parent[w]
        return w

    owner: dict[str, Path] = {}
    for w in wheels:
        for path in written_paths(w):
            if path in owner:
                parent[root(w)] = root(owner[path])
            else:
                owner[path] = w
    groups: dict[Path, list[Path]] = {}
    for w in wheels:
        groups.setdefault(root(w), []).append(w)
    out: list[tuple[int, list[Path]]] = [(0, []) for _ in range(jobs)]
    for group in sorted(groups.values(), key=lambda g: -sum(w.stat().st_size for w in g)):
        i = min(range(jobs), key=lambda k: out[k][0])  # the largest left to the least loaded
        out[i] = (out[i][0] + sum(w.stat().st_size for w in group), out[i][1] + group)
    return [ws for _, ws in out if ws]


def parallel(project: Path, extras: list[str], jobs: int) -> bool:
    deps, build = requirements(project, extras)
    t = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        # the build's requirements too: the project is built in the environment, not in an isolated one
        wheels = resolve(deps + build, Path(tmp))
        return wheels is not None and unpack(project, wheels, jobs, t)


def unpack(project: Path, wheels: list[Path], jobs: int, t: float) -> bool:
    mb = sum(w.stat().st_size for w in wheels) / 2**20
    groups = shares(wheels, jobs)
    say(f"{len(wheels)} wheels ({mb:,.0f} MB) resolved in {time.monotonic() - t:.0f} s; "
        f"unpacking them in {len(groups)} pip processes")
    t = time.monotonic()
    procs = [pip("install", "-q", "--no-deps", "--no-compile", *map(str, g)) for g in groups]
    if not all([finish(p) for p in procs]):
        return False
    say(f"unpacked in {time.monotonic() - t:.0f} s; installing the project (editable)")
    return finish(pip("install", "-q", "--no-deps", "--no-compile", "--no-build-isolation", "-e", str(project)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--extras", default="test", help="the project's extras to install, comma-separated ('' for none)")
    p.add_argument("--project", type=Path, default=ROOT, help="the project's folder (its pyproject.toml)")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="pip processes unpacking wheels")
    args = p.parse_args()
    extras = [e for e in args.extras.split(",") if e]
    project = args.project.resolve()
    if sys.prefix == sys.base_prefix:
        sys.exit("install_venv: run it with a virtual environment's Python (make venv does)")
    # a recent pip resolves this project's requirements in 7 s where Python 3.11's own (23.2) takes 14-20 s here,
    # and has --report (pip 22.2 and later); where the upgrade cannot be had, the pip there does
    upgrade = pip("install", "-q", "--upgrade", "pip")
    upgrade.communicate()
    if upgrade.returncode != 0:
        say("pip could not be upgraded (no index reachable?); going on with the pip there")
    try:
        done = args.jobs > 1 and parallel(project, extras, args.jobs)
    except Unresolvable:
        return 1
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        say(f"the parallel install stopped ({e}): one plain pip install instead")
        done = False
    if not done:  # pip installs whatever the parallel path left out, and says why where it cannot
        target = f"{project}[{','.join(extras)}]" if extras else str(project)
        if not finish(pip("install", "-q", "--no-compile", "-e", target)):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
