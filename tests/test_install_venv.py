"""tools/install_venv.py (what `make venv` runs): wheels that write one path never go to two pip processes, and a
new environment gets a project and its dependencies from parallel pip processes, with real wheels and a real pip."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import install_venv  # noqa: E402


def wheel(folder: Path, name: str, files: dict[str, str], scripts: list[str] = (), pad: int = 0,
          version: str = "1.0", section: str = "console_scripts") -> Path:
    """A real wheel (the format pip installs): `files` at the top of site-packages, entry-point `scripts`, and
    `pad` bytes of incompressible data (its size on disk)."""
    info = f"{name}-{version}.dist-info"
    contents = {**files, f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    if scripts:
        contents[f"{info}/entry_points.txt"] = f"[{section}]\n" + "".join(f"{s} = {name}:main\n" for s in scripts)
    if pad:
        contents[f"{name}_pad.bin"] = os.urandom(pad).hex()
    contents[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in contents) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, text in contents.items():
            z.writestr(p, text)
    return path


def test_wheels_that_write_one_path_go_to_one_pip_process(tmp_path):
    w = lambda name, files, **kw: wheel(tmp_path, name, files, pad=4000, **kw)  # noqa: E731 (equal sizes)
    clashes = {  # each pair writes one path in common, as pip would install it
        "a namespace package's __init__.py": (w("parta", {"space/__init__.py": "", "space/a.py": ""}),
                                              w("partb", {"space/__init__.py": "", "space/b.py": ""})),
        "a console script and a script file": (w("tool", {"tool/__init__.py": ""}, scripts=["runme"]),
                                               w("other", {"other-1.0.data/scripts/runme": "#!/bin/sh\n"})),
        "a GUI script and a script file": (w("gui", {"gui/__init__.py": ""}, scripts=["viewer"], section="gui_scripts"),
                                           w("view", {"view-1.0.data/scripts/viewer": "#!/bin/sh\n"})),
        "data files": (w("data1", {"data1-1.0.data/data/share/doc/x.txt": "1"}),
                       w("data2", {"data2-1.0.data/data/share/doc/x.txt": "2"})),
        "headers": (w("head1", {"head1-1.0.data/headers/x.h": ""}), w("head2", {"head2-1.0.data/headers/x.h": ""})),
        "names that differ in case only": (w("case1", {"Mod/x.py": ""}), w("case2", {"mod/X.py": ""})),
    }
    apart = w("apart", {"apart/__init__.py": ""})
    for what, pair in clashes.items():
        assert len(install_venv.shares(list(pair), 2)) == 1, what  # one process for both
        assert len(install_venv.shares([pair[0], apart], 2)) == 2, what  # two wheels of one size, nothing shared
    wheels = [x for pair in clashes.values() for x in pair] + [apart]
    for jobs in (2, 3, 4):
        groups = install_venv.shares(wheels, jobs)
        assert sorted(p for g in groups for p in g) == sorted(wheels) and len(groups) == jobs  # each wheel once
        where = {x: i for i, g in enumerate(groups) for x in g}
        assert all(where[a] == where[b] for a, b in clashes.values())
    # about equal in bytes: the largest first to the least loaded
    big = wheel(tmp_path, "big", {"big/__init__.py": ""}, pad=12000)
    two = install_venv.shares([big, *clashes["a namespace package's __init__.py"], apart], 2)
    assert [sorted(x.name.split("-")[0] for x in g) for g in two] == [["big"], ["apart", "parta", "partb"]]


BACKEND = '''"""PEP 660's editable wheel for the test's project: a .pth file pointing at src/."""
import pathlib, zipfile

INFO = "tiny-0.1.dist-info"
METADATA = ("Metadata-Version: 2.1\\nName: tiny\\nVersion: 0.1\\nRequires-Dist: parta\\nRequires-Dist: partb\\n"
            "Provides-Extra: extra\\nRequires-Dist: big; extra == 'extra'\\n")
WHEEL = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"


def get_requires_for_build_editable(config_settings=None):
    return []


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    name = "tiny-0.1-py3-none-any.whl"
    files = {"tiny.pth": str(pathlib.Path("src").resolve()) + "\\n", f"{INFO}/METADATA": METADATA,
             f"{INFO}/WHEEL": WHEEL}
    files[f"{INFO}/RECORD"] = "".join(f"{p},,\\n" for p in files) + f"{INFO}/RECORD,,\\n"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return name
'''


def test_a_new_environment_gets_the_project_from_parallel_pip_processes(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel(wheels, "parta", {"space/__init__.py": "", "space/a.py": "A = 1\n"})
    wheel(wheels, "partb", {"space/__init__.py": "", "space/b.py": "B = 2\n"})
    wheel(wheels, "solo", {"solo/__init__.py": "SOLO = 4\n"})
    wheel(wheels, "big", {"big/__init__.py": "BIG = 3\n"}, pad=20000)
    project = tmp_path / "project"
    (project / "src" / "tiny").mkdir(parents=True)
    (project / "src" / "tiny" / "__init__.py").write_text("from space.a import A\nfrom space.b import B\n")
    # an in-tree build backend: nothing to fetch for the build (a new environment's setuptools differs by Python)
    (project / "backend.py").write_text(BACKEND)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "tiny"\nversion = "0.1"\ndependencies = ["parta", "partb", "solo"]\n\n'
        '[project.optional-dependencies]\nextra = ["big>=1.0"]\nbroken = ["nosuchpackage"]\n')
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()  # nothing of this host's pip or Python settings
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")}
    env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_CONFIG_FILE": os.devnull}
    # an older `big` installed already: replaced first, alone, so that no other install runs beside its removal
    old = wheel(tmp_path, "big", {"big/__init__.py": "BIG = 0\n"}, version="0.9")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(old)], env=env, check=True)
    r = subprocess.run([str(python), str(ROOT / "tools" / "install_venv.py"), "--project", str(project),
                        "--extras", "extra", "--jobs", "2"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    # big first (it replaces 0.9), then parta and partb (one path in common) in one process, solo in the other
    assert "4 wheels" in r.stderr and "1 replacing or running the installer first, the rest in 2 pip process" \
        in r.stderr, r.stderr
    assert "plain pip install" not in r.stderr and "WARNING" not in r.stderr, r.stderr
    out = subprocess.run([str(python), "-c", "import tiny, big, solo; print(tiny.A, tiny.B, big.BIG, solo.SOLO, "
                          "tiny.__file__)"], capture_output=True, text=True, check=True, env=env).stdout.split()
    assert out[:4] == ["1", "2", "3", "4"] and Path(out[4]).is_relative_to(project)  # editable: the project's own
    # recorded as one `pip install` records them: versions from an index, not files (which are gone)
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, env=env).stdout
    assert {"big==1.0", "parta==1.0", "partb==1.0", "solo==1.0"} <= set(freeze.split()), freeze
    assert "file://" not in freeze.replace(project.as_uri(), ""), freeze
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout
    # what the parallel path cannot do goes to one plain pip install, which says what it can
    r = subprocess.run([str(python), str(ROOT / "tools" / "install_venv.py"), "--project", str(project),
                        "--extras", "nosuch"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "pyproject.toml has no extra 'nosuch'" in r.stderr and "one plain pip install instead" in r.stderr
    assert "does not provide the extra 'nosuch'" in r.stderr  # pip's own word on it
    # requirements pip cannot meet: its error once, and a failure (make stops there)
    r = subprocess.run([str(python), str(ROOT / "tools" / "install_venv.py"), "--project", str(project),
                        "--extras", "broken"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and r.stderr.count("No matching distribution found for nosuchpackage") == 1, r.stderr
