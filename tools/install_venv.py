"""Install the project and its dependencies into a virtual environment, the wheels unpacked in parallel.

`make venv` runs it with the new environment's Python. pip installs wheels one after another, and PyTorch's CUDA
build (the one pip takes on Linux x86_64) is 2.9 GB of wheels that unpack to about 5.6 GB: about 40 s of one core
on this project's machines, the larger part of a fresh clone's setup. Here pip resolves the requirements once
(its own resolver: `pip install --dry-run --report`), the wheels it chose are gathered in one folder (those from an
index online downloaded there, their hashes checked), then:
- wheels that replace an installed distribution (a new venv's setuptools; any upgrade on a rerun), and pip,
  setuptools and wheel themselves, go in first, in one process: a removal never runs beside another install;
- the rest in N pip processes, each a share about equal in bytes, from that folder only (`--no-index
  --find-links`, exact versions: pip records them as installed from an index, as one `pip install` would);
  wheels that would write a common file (read from their file lists) go to the same process;
- the project itself last (editable, built in the environment).

Anything it cannot do that way (a Python without tomllib, a pip without `--report`, a requirement that is not a
wheel, dependencies the project computes, a failed step) falls back to one plain `pip install -e .[EXTRAS]`, with
one line saying so; requirements pip cannot meet, or a project that does not build, stop it with pip's own error
once. `--jobs 1` takes the same steps in one process (benchmarks/setup_speed.py compares them).

    python tools/install_venv.py [--extras test] [--jobs N] [--project DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the plain install, where pip says which Python the project needs
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]  # the project (--project for another)


def allowed_cpus() -> int:
    """neuralscale's own count (affinity within the cgroup's quota), read from its file: the package itself is not
    installed yet, and its threads module needs nothing but the standard library."""
    spec = importlib.util.spec_from_file_location("_neuralscale_threads", ROOT / "src" / "neuralscale" / "threads.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.allowed_cpus()


PIP = [sys.executable, "-m", "pip"]
# pip repeats this for every index page it cannot find on a file:// index; it says nothing about the install
NOISE = "is ignored: it is neither a file nor a directory"
FIRST = {"pip", "setuptools", "wheel"}  # what pip and the project's build run on: never beside another install


class Unresolvable(Exception):
    """pip found no set of versions for the requirements, or the project did not build (pip said why)."""


class Fallback(Exception):
    """Something the parallel path does not do: the plain install does it (the message says what)."""


def say(message: str) -> None:
    print(f"install_venv: {message}", file=sys.stderr, flush=True)


def norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def pip(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*PIP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")


def finish(proc: subprocess.Popen) -> tuple[bool, str]:
    out, _ = proc.communicate()
    for line in out.splitlines():
        if NOISE not in line:
            print(line, file=sys.stderr)
    return proc.returncode == 0, out


def requirements(project: Path, extras: list[str]) -> tuple[list[str], list[str]]:
    """The project's dependencies with the extras asked for, and its build requirements."""
    if tomllib is None:
        raise Fallback("this Python has no tomllib (3.11 and later do)")
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    table = meta.get("project", {})
    if {"dependencies", "optional-dependencies"} & set(table.get("dynamic", [])):
        raise Fallback("the project computes its dependencies")
    deps = list(table.get("dependencies", []))
    for extra in extras:
        if extra not in table.get("optional-dependencies", {}):
            raise Fallback(f"pyproject.toml has no extra {extra!r}")
        deps += table["optional-dependencies"][extra]
    return deps, list(meta.get("build-system", {}).get("requires", []))


def resolve(reqs: list[str], folder: Path) -> dict[str, tuple[str, Path]]:
    """{name: (version, wheel in `folder`)} of what pip would install for `reqs` (its resolver, nothing
    installed): wheels on this disk linked there, those from an index online downloaded there, hashes checked."""
    report = folder / "report.json"
    ok, out = finish(pip("install", "-q", "--dry-run", "--report", str(report), *reqs))
    if not ok:
        if "no such option" in out:
            raise Fallback("this pip has no --report (pip 22.2 and later do)")
        raise Unresolvable
    chosen, remote = {}, []
    for item in json.loads(report.read_text())["install"]:
        info, name = item["download_info"], norm(item["metadata"]["name"])
        url = urlparse(info["url"])
        if not url.path.endswith(".whl"):
            raise Fallback(f"{item['metadata']['name']} is not a wheel there")
        path = Path(unquote(url.path))
        if url.scheme == "file":
            os.symlink(path, folder / path.name)
        else:
            hashes = info.get("archive_info", {}).get("hashes") or {}
            digest = next(iter(hashes.items()), None)
            remote.append(info["url"] + (f"#{digest[0]}={digest[1]}" if digest else ""))
        chosen[name] = (item["metadata"]["version"], folder / path.name)
    if remote and not finish(pip("download", "-q", "--no-deps", "--dest", str(folder), *remote))[0]:
        raise Fallback("a download failed")
    return chosen


def written_paths(wheel: Path) -> set[str]:
    """The paths a wheel writes, relative to the environment, case-folded (its scripts and entry points under
    bin/; its data where the environment's root is)."""
    paths = set()
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            head, _, rest = name.partition("/")
            if head.endswith(".data") and rest:
                scheme, _, rest = rest.partition("/")
                name = {"scripts": f"bin/{rest}", "purelib": rest, "platlib": rest, "data": f"@root/{rest}",
                        "headers": f"@include/{rest}"}.get(scheme, f"@{scheme}/{rest}")
            elif head.endswith(".dist-info") and rest == "entry_points.txt":
                section = None
                for line in z.read(name).decode("utf-8", "replace").splitlines():
                    line = line.strip()
                    if line.startswith("["):
                        section = line.strip("[]")
                    elif section in ("console_scripts", "gui_scripts") and "=" in line:
                        paths.add(f"bin/{line.split('=')[0].strip()}".casefold())
            if not name.endswith("/"):
                paths.add(os.path.normpath(name).casefold())
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


def install(folder: Path, pins: list[str]) -> subprocess.Popen:
    """pip installing exactly `pins` (name==version) from `folder` alone."""
    return pip("install", "-q", "--no-deps", "--no-compile", "--no-index", "--find-links", str(folder), *pins)


def parallel(project: Path, extras: list[str], jobs: int) -> None:
    deps, build = requirements(project, extras)
    t = time.monotonic()
    # next to the environment (its disk, which `make venv` checked), not in a /tmp that may be small
    with tempfile.TemporaryDirectory(dir=sys.prefix, prefix=".wheels-") as tmp:
        # the build's requirements too: the project is built in the environment, not in an isolated one
        chosen = resolve(deps + build, Path(tmp))
        installed = {norm(d.metadata["Name"] or "") for d in metadata.distributions()}
        first = sorted(n for n in chosen if n in installed or n in FIRST)
        rest = {chosen[n][1]: n for n in chosen if n not in first}
        groups = shares(list(rest), jobs)
        mb = sum(w.stat().st_size for _, w in chosen.values()) / 2**20
        say(f"{len(chosen)} wheels ({mb:,.0f} MB) resolved in {time.monotonic() - t:.0f} s; "
            f"{len(first)} replacing or running the installer first, the rest in {len(groups)} pip process(es)")
        t = time.monotonic()
        if first and not finish(install(Path(tmp), [f"{n}=={chosen[n][0]}" for n in first]))[0]:
            raise Fallback("an install failed")
        procs = [install(Path(tmp), [f"{rest[w]}=={chosen[rest[w]][0]}" for w in g]) for g in groups]
        if not all([finish(p)[0] for p in procs]):  # every process waited for before the fallback starts
            raise Fallback("an install failed")
    say(f"unpacked in {time.monotonic() - t:.0f} s; installing the project (editable)")
    if not finish(pip("install", "-q", "--no-deps", "--no-compile", "--no-build-isolation", "-e", str(project)))[0]:
        raise Unresolvable  # the plain install would build it again, and fail again the same way


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--extras", default="test", help="the project's extras to install, comma-separated ('' for none)")
    p.add_argument("--project", type=Path, default=ROOT, help="the project's folder (its pyproject.toml)")
    p.add_argument("--jobs", type=int, default=min(4, allowed_cpus()),
                   help="pip processes unpacking wheels (1: the same steps in one); default: the CPUs this process "
                        "may use, at most 4")
    args = p.parse_args()
    extras = [e for e in args.extras.split(",") if e]
    project = args.project.resolve()
    if sys.prefix == sys.base_prefix:
        sys.exit("install_venv: run it with a virtual environment's Python (make venv does)")
    # a recent pip resolves this project's requirements in 7 s where Python 3.11's own (23.2) takes 14-20 s here,
    # and has --report (pip 22.2 and later); where the upgrade cannot be had, the pip there does
    upgrade = pip("install", "-q", "--upgrade", "pip")
    out, _ = upgrade.communicate()
    if upgrade.returncode != 0:
        last = [line for line in out.splitlines() if line.strip() and NOISE not in line][-1:]
        say(f"pip could not be upgraded ({last[0].strip() if last else 'no reason given'}); going on with the pip "
            "there")
    try:
        parallel(project, extras, max(1, args.jobs))
        return 0
    except Unresolvable:
        return 1
    except Fallback as e:
        say(f"{e}: one plain pip install instead")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        say(f"the parallel install stopped ({type(e).__name__}: {e}): one plain pip install instead")
    # pip installs whatever the parallel path left out, and says why where it cannot
    target = f"{project}[{','.join(extras)}]" if extras else str(project)
    return 0 if finish(pip("install", "-q", "--no-compile", "-e", target))[0] else 1


if __name__ == "__main__":
    sys.exit(main())
