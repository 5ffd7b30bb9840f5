"""Where a command may write (guard.py): never over finished results, never into a run or descent directory or a
sweep store (an export or a law: not with --force either), and a place that cannot be written found before the
work."""

from __future__ import annotations

import pytest

from neuralscale.errors import NeuralscaleError
from neuralscale.guard import check_new_file, check_report_dir


def test_a_new_files_folder_is_made_or_refused_before_the_work(tmp_path):
    """The folders a new file goes in are made as it is checked, and a place that cannot be written is one error
    then, not after the work (a mutation audit: without the check every test passed, the error coming later from
    the write itself)."""
    path = tmp_path / "a" / "b" / "law.json"
    assert check_new_file(path) == path and path.parent.is_dir() and not path.exists()
    (tmp_path / "file").write_text("")  # a file where a folder should be: refused for root too
    with pytest.raises(NeuralscaleError, match=f"cannot write {tmp_path / 'file' / 'law.json'}"):
        check_new_file(tmp_path / "file" / "law.json")


def test_force_writes_a_report_into_any_folder(tmp_path):
    """--force (force=True) takes a folder of other files for a report, as its help says (a mutation audit:
    force ignored passed the tests); without it the folder is refused."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    with pytest.raises(NeuralscaleError, match=r"holds files that are not a report \(notes.txt\)"):
        check_report_dir(folder)
    assert check_report_dir(folder, force=True) == folder
    assert check_report_dir(tmp_path / "new") == tmp_path / "new"  # a new folder: nothing to lose


def test_force_never_writes_a_file_among_a_run_descent_or_stores_records(tmp_path, tiny_descent, capsys):
    """`fit --out DESCENT/fits.json --force` and `export RUN --out OTHER_RUN/record --force` replaced the descent's
    laws and another run's record with a law or a model (the descent and run were then "damaged"), as
    `--out STORE/sweep.json` did a store's plan: --force overwrites a file of one's own, never a record."""
    import json
    import shutil

    from neuralscale import cli
    descent = tmp_path / "d"
    shutil.copytree(tiny_descent[0], descent)
    run, store = tmp_path / "run", tmp_path / "store"
    for folder, name in ((run, "record.json"), (store, "sweep.json")):
        folder.mkdir()
        (folder / name).write_text("{}")  # (the guard reads the layout; the records' content is not its point)
    trajectory = str(descent / "iteration_01.csv")
    before = {p: p.read_bytes() for p in (descent / "fits.json", descent / "config.json", run / "record.json",
                                          store / "sweep.json")}
    for target in before:
        for force in ([], ["--force"]):
            capsys.readouterr()
            code = cli.main(["fit", trajectory, "--model", "vgg11", "--dataset", "synthetic", "--out", str(target),
                             *force])
            err = capsys.readouterr().err.strip()
            assert code == 2 and err == f"neuralscale: error: {target} would be written into the " \
                f"{'descent directory' if target.parent == descent else 'run directory' if target.parent == run else 'sweep store'} " \
                f"{target.parent}, among its records; give another place", err
    assert {p: p.read_bytes() for p in before} == before
    mine = tmp_path / "law.json"  # a file of one's own: --force replaces it
    mine.write_text("{}")
    assert cli.main(["fit", trajectory, "--model", "vgg11", "--dataset", "synthetic", "--out", str(mine)]) == 2
    assert cli.main(["fit", trajectory, "--model", "vgg11", "--dataset", "synthetic", "--out", str(mine),
                     "--force"]) == 0
    assert json.loads(mine.read_text()) != {}


def test_a_file_deeper_inside_a_run_is_refused_and_a_projects_own_files_of_those_names_are_not(tmp_path):
    """An export in runs/a/sub/ was written, and a `--force` rerun of the run cleared it (an adversarial pass):
    refused, as directly inside is; but above the folder, a record.json or config.json of a project's own (not a
    neuralscale run's or descent's) does not make every file below it refused."""
    import json
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "record.json").write_text(json.dumps({"kind": "run", "id": "a", "status": "finished"}))
    with pytest.raises(NeuralscaleError, match=f"would be written into the run directory {run}"):
        check_new_file(run / "sub" / "deeper" / "m.json")
    project = tmp_path / "project"
    (project / "exports").mkdir(parents=True)
    (project / "record.json").write_text('{"title": "my notes"}')
    (project / "config.json").write_text('{"lr": 0.1}')
    (project / "log.txt").write_text("mine\n")
    assert check_new_file(project / "exports" / "m.json") == project / "exports" / "m.json"
