"""Where a command may write (guard.py): never over finished results, never into a run or descent directory, and
a place that cannot be written found before the work."""

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
