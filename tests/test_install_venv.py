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


def wheel(folder: Path, name: str, files: dict[str, str], scripts: list[str] = (), pad: int = 0) -> Path:
    """A real wheel (the format pip installs): `files` at the top of site-packages, console `scripts`, and `pad`
    bytes of incompressible data (its size on disk)."""
    info = f"{name}-1.0.dist-info"
    contents = {**files, f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
                f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    if scripts:
        contents[f"{info}/entry_points.txt"] = "[console_scripts]\n" + "".join(f"{s} = {name}:main\n" for s in scripts)
    if pad:
        contents[f"{name}_pad.bin"] = os.urandom(pad).hex()
    contents[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in contents) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, text in contents.items():
            z.writestr(p, text)
    return path


def test_wheels_that_write_one_path_go_to_one_pip_process(tmp_path):
    shared_a = wheel(tmp_path, "parta", {"space/__init__.py": "", "space/a.py": ""}, pad=3000)
    shared_b = wheel(tmp_path, "partb", {"space/__init__.py": "", "space/b.py": ""}, pad=3000)
    big = wheel(tmp_path, "big", {"big/__init__.py": ""}, pad=12000)
    tool = wheel(tmp_path, "tool", {"tool/__init__.py": ""}, scripts=["runme"], pad=1000)
    other = wheel(tmp_path, "other", {"other/__init__.py": "", "other-1.0.data/scripts/runme": "#!/bin/sh\n"})
    alone = wheel(tmp_path, "alone", {"alone/__init__.py": ""}, pad=1000)
    assert "bin/runme" in install_venv.written_paths(tool) and "bin/runme" in install_venv.written_paths(other)
    wheels = [shared_a, shared_b, big, tool, other, alone]
    for jobs in (2, 3):
        groups = install_venv.shares(wheels, jobs)
        assert sorted(p for g in groups for p in g) == sorted(wheels)  # each wheel once
        where = {w: i for i, g in enumerate(groups) for w in g}
        assert where[shared_a] == where[shared_b] and where[tool] == where[other]
        assert len(groups) == jobs
    two = install_venv.shares(wheels, 2)
    # the largest first to the least loaded: big alone, the rest (about as many bytes) in the other
    assert [sorted(w.name.split("-")[0] for w in g) for g in two] == [["big"], ["alone", "other", "parta", "partb",
                                                                                "tool"]]


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
    wheel(wheels, "big", {"big/__init__.py": "BIG = 3\n"}, pad=20000)
    project = tmp_path / "project"
    (project / "src" / "tiny").mkdir(parents=True)
    (project / "src" / "tiny" / "__init__.py").write_text("from space.a import A\nfrom space.b import B\n")
    # an in-tree build backend: nothing to fetch for the build (a new environment's setuptools differs by Python)
    (project / "backend.py").write_text(BACKEND)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "tiny"\nversion = "0.1"\ndependencies = ["parta", "partb"]\n\n'
        '[project.optional-dependencies]\nextra = ["big"]\nbroken = ["nosuchpackage"]\n')
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_CONFIG_FILE": os.devnull}
    r = subprocess.run([str(python), str(ROOT / "tools" / "install_venv.py"), "--project", str(project),
                        "--extras", "extra", "--jobs", "2"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "3 wheels" in r.stderr and "unpacking them in 2 pip processes" in r.stderr, r.stderr
    assert "plain pip install" not in r.stderr
    out = subprocess.run([str(python), "-c", "import tiny, big; print(tiny.A, tiny.B, big.BIG, tiny.__file__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[:3] == ["1", "2", "3"] and Path(out[3]).is_relative_to(project)  # editable: the project's source
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
