"""Dataset readers on small files written in the exact upstream formats."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import (RunsCode, write_cifar, write_fashion, write_imagefolder, write_tinyimagenet)
from neuralscale.data import load
from neuralscale.data.augment import channel_stats, random_crop, random_flip, random_rotate
from neuralscale.data.download import fetch
from neuralscale.errors import NeuralscaleError


@pytest.mark.parametrize("name,archive", [("cifar10", True), ("cifar10", False), ("cifar100", True), ("cifar100", False)])
def test_cifar_reads_archive_and_folder(tmp_path, name, archive):
    write_cifar(tmp_path, name, per_batch=8, n_test=10, archive=archive)
    d = load(name, tmp_path)
    assert d.train_x.shape == (40, 3, 32, 32) and d.train_x.dtype == torch.uint8
    assert d.test_x.shape == (10, 3, 32, 32)
    assert d.train_y.dtype == torch.int64 and int(d.train_y.max()) < (10 if name == "cifar10" else 100)
    assert d.classes[:2] == ["c0", "c1"]
    # pixels land where the upstream row-major (3, 32, 32) layout puts them
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes(), encoding="bytes") \
        if (name == "cifar10" and not archive) else None
    if raw is not None:
        assert torch.equal(d.test_x[3], torch.from_numpy(raw[b"data"][3].reshape(3, 32, 32)))


def test_cifar_pickle_with_foreign_objects_is_refused(tmp_path):
    d = write_cifar(tmp_path, "cifar10", per_batch=4, n_test=4, archive=False)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (d / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(NeuralscaleError, match="data_batch_1"):
        load("cifar10", tmp_path)


def test_corrupt_cifar_archive_is_a_clear_error(tmp_path):
    path = write_cifar(tmp_path, "cifar100", per_batch=4, n_test=4)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(NeuralscaleError, match="cifar-100-python.tar.gz"):
        load("cifar100", tmp_path)


def test_cifar_archive_missing_a_member(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(NeuralscaleError, match="data_batch_1"):
        load("cifar10", tmp_path)


def test_cifar_members_that_are_not_files_are_one_line(tmp_path):
    """An archive whose batches are folders (or links, devices: tarfile gives no file for them) and an extracted
    folder whose batch is a folder: each said in one line naming the member, not an AttributeError."""
    path = tmp_path / "a" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for m in ["batches.meta", "test_batch", *(f"data_batch_{i}" for i in range(1, 6))]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{m}")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    with pytest.raises(NeuralscaleError, match="has no file cifar-10-batches-py/data_batch_1; it is not the cifar10"):
        load("cifar10", path.parent)
    folder = write_cifar(tmp_path / "b", "cifar10", per_batch=4, n_test=4, archive=False)
    batch = (tmp_path / "b" / "cifar-10-batches-py" / "data_batch_3")
    batch.unlink()
    batch.mkdir()
    with pytest.raises(NeuralscaleError, match="data_batch_3 is not a file; the CIFAR folder is damaged"):
        load("cifar10", tmp_path / "b")
    assert folder


def test_an_encrypted_tinyimagenet_zip_is_one_line(tmp_path):
    """Members marked encrypted (zipfile raises RuntimeError for them) are said in one line naming the file."""
    path = write_tinyimagenet(tmp_path)
    blob = bytearray(path.read_bytes())
    at = blob.find(b"PK\x01\x02")
    while at >= 0:  # every central-directory entry: flags (offset 8), bit 0 set
        blob[at + 8] |= 1
        at = blob.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(blob))
    with pytest.raises(NeuralscaleError, match=r"tiny-imagenet-200.zip: cannot read wnids.txt \(File .* is encrypted"):
        load("tinyimagenet", tmp_path)


@pytest.mark.parametrize("name", ["../../train/n00001000/images/n00001000_0.JPEG", "sub/val_0.JPEG", ".."])
def test_a_validation_annotation_outside_val_images_is_refused(tmp_path, name):
    """val_annotations.txt names bare file names of val/images: a path out of it (a training image taken as a
    test image) is refused, naming it."""
    root = write_tinyimagenet(tmp_path, archive=False)
    notes = root / "val" / "val_annotations.txt"
    notes.write_text(notes.read_text() + f"{name}\tn00001000\t0\t0\t63\t63\n")
    with pytest.raises(NeuralscaleError, match=f"val_annotations.txt names {re.escape(repr(name))}, not an image"):
        load("tinyimagenet", tmp_path)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx(tmp_path, gz):
    write_fashion(tmp_path, n_train=30, n_test=12, gz=gz)
    d = load("fashionmnist", tmp_path)
    assert d.train_x.shape == (30, 1, 32, 32) and d.test_x.shape == (12, 1, 32, 32)
    assert d.train_x[:, :, :2].sum() == 0 and d.train_x[:, :, :, -2:].sum() == 0  # zero padding 28 -> 32
    raw = gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes()) if gz else \
        (tmp_path / "train-images-idx3-ubyte").read_bytes()
    first = np.frombuffer(raw, np.uint8, offset=16)[: 28 * 28].reshape(28, 28)
    assert torch.equal(d.train_x[0, 0, 2:30, 2:30], torch.from_numpy(first.copy()))


def test_fashion_mnist_torchvision_layout(tmp_path):
    write_fashion(tmp_path / "FashionMNIST" / "raw", n_train=20, n_test=10)
    assert len(load("fashionmnist", tmp_path).train_y) == 20


def test_truncated_idx_is_a_clear_error(tmp_path):
    write_fashion(tmp_path, n_train=20, n_test=10, gz=False)
    p = tmp_path / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(NeuralscaleError, match="t10k-images-idx3-ubyte.*truncated"):
        load("fashionmnist", tmp_path)


def test_idx_with_bad_magic(tmp_path):
    write_fashion(tmp_path, n_train=20, n_test=10, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(NeuralscaleError, match="magic"):
        load("fashionmnist", tmp_path)


@pytest.mark.parametrize("archive", [True, False])
def test_tinyimagenet_official_layout(tmp_path, archive):
    write_tinyimagenet(tmp_path, archive=archive, classes=3, train_per_class=5, val_per_class=4)
    d = load("tinyimagenet", tmp_path)
    assert d.train_x.shape == (15, 3, 64, 64)  # grayscale JPEGs become RGB
    assert d.test_x.shape == (12, 3, 64, 64) and d.val_x is None
    assert sorted(d.test_y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    # class c was drawn brighter by 60 per class: labels follow the annotations file
    means = [d.test_x[d.test_y == c].float().mean().item() for c in range(3)]
    assert means[0] < means[1] < means[2]


def test_tinyimagenet_original_split(tmp_path):
    write_tinyimagenet(tmp_path, classes=3, train_per_class=4, val_per_class=4)
    d = load("tinyimagenet", tmp_path, tinyimagenet_split="original")
    assert d.val_x.shape[0] == 6 and d.test_x.shape[0] == 6  # half of each class's validation images each
    assert sorted(d.val_y.tolist()) == [0, 0, 1, 1, 2, 2]
    s = d.split(0.1)
    assert len(s.val[1]) == 6 and len(s.train[1]) == 12  # the dataset's own validation set is used


def test_tinyimagenet_class_sorted_val_folder(tmp_path):
    root = write_tinyimagenet(tmp_path, archive=False, classes=2, train_per_class=3, val_per_class=2)
    ann = (root / "val" / "val_annotations.txt").read_text().splitlines()
    for line in ann:
        fname, wnid = line.split("\t")[:2]
        (root / "val" / wnid / "images").mkdir(parents=True, exist_ok=True)
        (root / "val" / "images" / fname).rename(root / "val" / wnid / "images" / fname)
    (root / "val" / "val_annotations.txt").unlink()
    assert len(load("tinyimagenet", tmp_path).test_y) == 4


def test_corrupt_tinyimagenet_zip(tmp_path):
    (tmp_path / "tiny-imagenet-200.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(NeuralscaleError, match="tiny-imagenet-200.zip"):
        load("tinyimagenet", tmp_path)


def test_imagefolder(tmp_path):
    write_imagefolder(tmp_path, classes=3, per_class=4, size=24)
    d = load(f"imagefolder:{tmp_path}")
    assert d.info.num_classes == 3 and d.info.resolution == 24
    assert d.train_x.shape == (12, 3, 24, 24) and d.test_x.shape == (6, 3, 24, 24)
    assert d.classes == ["class_0", "class_1", "class_2"]


def test_a_validation_split_too_small_to_hold_an_image_is_said_as_it_is_cut(tmp_path):
    """4 training images a class and a fraction of 0.1: none in any class. Said when the split is cut (a sweep
    once learned it from its report, which blamed a run "trained without a validation split"); a split that holds
    images, or none asked for, says nothing."""
    import warnings
    from neuralscale.errors import NeuralscaleWarning
    write_imagefolder(tmp_path, classes=3, per_class=4, size=24)
    d = load(f"imagefolder:{tmp_path}")
    with pytest.warns(NeuralscaleWarning, match=r"a validation fraction of 0.1 of 12 training images holds none"):
        assert len(d.split(0.1, 0).val[1]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeuralscaleWarning)
        assert len(d.split(0.25, 0).val[1]) == 3 and len(d.split(0.0, 0).val[1]) == 0


def test_imagefolder_errors(tmp_path, monkeypatch):
    with pytest.raises(NeuralscaleError, match="does not exist"):
        load(f"imagefolder:{tmp_path / 'nope'}")
    monkeypatch.chdir(tmp_path)  # a relative name: where it was looked for, and how such a name is read
    with pytest.raises(NeuralscaleError, match=re.escape(f"image folder nope does not exist here ({tmp_path}: a "
                                                         "relative name is read from where the command runs)")):
        load("imagefolder:nope")
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(NeuralscaleError, match="test"):
        load(f"imagefolder:{tmp_path}")
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "x.png").write_bytes(b"not a png")
    with pytest.raises(NeuralscaleError, match="one class folder"):
        load(f"imagefolder:{tmp_path}")
    (tmp_path / "train" / "b").mkdir(parents=True)
    (tmp_path / "train" / "b" / "y.png").write_bytes(b"not a png either")
    with pytest.raises(NeuralscaleError, match="x.png") as e:
        load(f"imagefolder:{tmp_path}")
    assert "not a format PIL can identify" in str(e.value) and "BytesIO" not in str(e.value)  # not PIL's buffer
    # a class folder without images: `info` (the dataset's description) refuses it as reading does; it counted it
    write_imagefolder(tmp_path / "f", classes=2, per_class=2, size=16)
    (tmp_path / "f" / "train" / "class_2").mkdir()
    (tmp_path / "f" / "train" / "class_2" / "notes.txt").write_text("no image")
    from neuralscale.data import dataset_info
    name, empty = f"imagefolder:{tmp_path / 'f'}", tmp_path / "f" / "train" / "class_2"
    for call in (lambda: dataset_info(name), lambda: load(name)):
        with pytest.raises(NeuralscaleError, match=re.escape(f"{empty} holds no images")):
            call()


def test_missing_data_dir_and_missing_files(tmp_path):
    with pytest.raises(NeuralscaleError, match="does not exist"):
        load("cifar10", tmp_path / "absent")
    with pytest.raises(NeuralscaleError, match="cifar-10-python.tar.gz"):
        load("cifar10", tmp_path, download=False)


def test_second_load_comes_from_the_cache(tmp_path, isolated_cache):
    write_cifar(tmp_path, "cifar10", per_batch=8, n_test=8)
    first = load("cifar10", tmp_path)
    cached = list((isolated_cache / "cache" / "tensors").glob("cifar10-*.pt"))
    assert len(cached) == 1
    # the archive is no longer read: replacing it with garbage of the same size and
    # mtime would go unnoticed, so instead check a changed archive invalidates the cache
    second = load("cifar10", tmp_path)
    assert torch.equal(first.train_x, second.train_x)
    write_cifar(tmp_path / "other", "cifar10", per_batch=4, n_test=4)
    (tmp_path / "other" / "cifar-10-python.tar.gz").replace(tmp_path / "cifar-10-python.tar.gz")
    assert len(load("cifar10", tmp_path).train_y) == 20


def test_an_image_folders_tensors_are_cached_in_one_file_of_the_cache(tmp_path, isolated_cache):
    """The dataset's name holds the folder's path: with its "/" kept, the cache file's name was a path of folders
    inside the cache, not one file in it (a mutation audit)."""
    write_imagefolder(tmp_path / "pets", classes=2, per_class=2, size=16)
    load(f"imagefolder:{tmp_path / 'pets'}")
    (cached,) = (isolated_cache / "cache" / "tensors").iterdir()
    assert cached.is_file() and cached.name.endswith(".pt") and "pets" in cached.name


def test_an_image_folder_edited_keeps_the_tensor_caches_of_its_two_versions_used_last(tmp_path, isolated_cache,
                                                                                         monkeypatch):
    """Each version of an image folder was cached under its own key and kept for good (a file as large as its
    images for every edit): the two used last are kept (two copies of a folder at one path, as two machines
    sharing a cache see it, each read once, not at every turn), another folder's cache (the same folder name
    elsewhere, named by a relative path from another directory too) and another dataset's are left, and a cache
    of the name caches had before (read no more) is removed."""
    import os

    import neuralscale.data.imagefolder as reader
    reads = []
    real = reader.read
    monkeypatch.setattr(reader, "read", lambda root: (reads.append(root), real(root))[1])
    tensors = isolated_cache / "cache" / "tensors"
    for where in ("a", "b"):
        write_imagefolder(tmp_path / where / "pets", classes=2, per_class=2, size=16)
    tensors.mkdir(parents=True)
    mine = {"cifar10-" + "1" * 20 + ".pt", "notes.txt"}
    before = "imagefolder_pets-" + "2" * 20 + ".pt"  # the name given as a relative path, as caches named it
    for name in (*mine, before):
        (tensors / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "b")
    other = load("imagefolder:pets")
    assert before not in {p.name for p in tensors.iterdir()}  # (no command reads it: a name of the old kind)
    monkeypatch.chdir(tmp_path / "a")
    first = load("imagefolder:pets")
    assert first.digest == other.digest and len({p.name for p in tensors.iterdir()} - mine) == 2  # one a folder
    image = tmp_path / "a" / "pets" / "train" / "class_1" / "img0.png"
    st = image.stat()
    versions = []
    for i, source in enumerate(("class_0/img0.png", "class_0/img1.png")):  # two edits: three versions
        image.write_bytes((tmp_path / "a" / "pets" / "train" / source).read_bytes())
        os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + (i + 1) * 1_000_000_000))
        versions.append(load(f"imagefolder:{tmp_path / 'a' / 'pets'}"))  # the same folder, named by its full path
    assert len({first.digest, *(v.digest for v in versions)}) == 3 and len(reads) == 4
    names = {p.name for p in tensors.iterdir()} - mine
    assert len(names) == 3 and mine <= {p.name for p in tensors.iterdir()}  # b's, and a's last two
    sources = ("class_0/img0.png", "class_0/img1.png")
    for i in (0, 1, 0, 1):  # the two versions in turn (the file put back as it was): each from its cache
        image.write_bytes((tmp_path / "a" / "pets" / "train" / sources[i]).read_bytes())
        os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + (i + 1) * 1_000_000_000))
        assert load("imagefolder:pets").digest == versions[i].digest
    assert len(reads) == 4 and {p.name for p in tensors.iterdir()} - mine == names
    assert load(f"imagefolder:{tmp_path / 'b' / 'pets'}").digest == other.digest and len(reads) == 4
    # a killed write's temporary file of another version (as large as the images) goes with the next version
    # written, once an hour old (a writer of that version may be at work on a newer one); its own key's as before
    prefixes = [n.rsplit("-", 1)[0] for n in names]
    a_name = next(p for p in prefixes if prefixes.count(p) == 2)  # a's: two versions kept
    old_tmp, new_tmp = (tensors / f".{a_name}-{'f' * 20}.pt.{w}.ns.tmp" for w in ("oldwrite", "newwrite"))
    for t in (old_tmp, new_tmp):
        t.write_bytes(b"half")
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    image.write_bytes((tmp_path / "a" / "pets" / "train" / "class_1" / "img1.png").read_bytes())
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 9_000_000_000))
    load("imagefolder:pets")
    assert not old_tmp.exists() and new_tmp.exists()


def test_an_image_folder_resized_to_a_first_image_of_another_size_than_most_says_so(tmp_path, isolated_cache,
                                                                                      caplog):
    """Every image is resized to the first training image's size: one large image sorted first made a folder of
    small ones that large, and training a hundred times slower, without a word (a walkthrough). Said as the folder
    is read; a few images of other sizes than the first (most of them its size) are not."""
    import logging

    from PIL import Image
    folder = write_imagefolder(tmp_path / "pets", classes=2, per_class=4, size=32)
    Image.open(folder / "train" / "class_0" / "img1.png").resize((20, 12)).save(folder / "train" / "class_1" / "x.png")
    with caplog.at_level(logging.WARNING, logger="neuralscale"):
        assert load(f"imagefolder:{folder}").info.resolution == 32
    assert "resized" not in caplog.text
    Image.open(folder / "train" / "class_0" / "img1.png").resize((64, 48)).save(folder / "train" / "class_0" / "a.png")
    with caplog.at_level(logging.WARNING, logger="neuralscale"):
        assert load(f"imagefolder:{folder}").info.resolution == 64
    assert f"warning: image folder {folder}: its images are resized to 64x64 px, the size of the first training " \
           "image (a.png), while 12 of its 14 images are 32 px on their longer side" in caplog.text


def test_an_image_folders_linked_folders_are_read_and_a_loop_is_not(tmp_path, isolated_cache):
    """A class folder holding a link to a folder of images: the reader left its images out without a word (the
    cache's key followed the link), 37 of 49 images trained (an adversarial pass). They are read; a link back to a
    folder above is not followed (a loop), nor a hidden one."""
    import os
    folder = write_imagefolder(tmp_path / "pets", classes=3, per_class=4, size=16)
    more = write_imagefolder(tmp_path / "more", classes=1, per_class=5, size=16, seed=3) / "train" / "class_0"
    os.symlink(more, folder / "train" / "class_1" / "extra")
    os.symlink(folder / "train", folder / "train" / "class_1" / "loop")
    os.symlink(more, folder / "train" / "class_2" / ".hidden")
    data = load(f"imagefolder:{folder}")
    assert torch.bincount(data.train_y).tolist() == [4, 4 + 5, 4]
    # a link into another class's folder, or to the test images: refused (a review: images read under two
    # classes, test images trained on)
    for target in (folder / "train" / "class_0", folder / "test" / "class_2"):
        link = folder / "train" / "class_2" / "sneaky"
        os.symlink(target, link)
        with pytest.raises(NeuralscaleError, match=re.escape(f"{link} links to {target}, inside the image folder but "
                                                             "outside its class folder")):
            load(f"imagefolder:{folder}")
        link.unlink()


def test_split_is_stratified_seeded_and_disjoint():
    d = load("synthetic", synthetic=dict(num_train=1000, num_test=100))
    a, b = d.split(0.1, seed=3), d.split(0.1, seed=3)
    assert torch.equal(a.val[0], b.val[0])
    assert len(a.val[1]) == 100 and len(a.train[1]) == 900
    assert torch.bincount(a.val[1]).tolist() == [10] * 10
    c = d.split(0.1, seed=4)
    assert not torch.equal(a.val[0], c.val[0])
    # no validation image is also a training image
    train_rows = {bytes(x.numpy().tobytes()) for x in a.train[0]}
    assert not any(bytes(x.numpy().tobytes()) in train_rows for x in a.val[0])


def test_download_checks_md5(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello" * 100)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    got = fetch(src.as_uri(), tmp_path / "dl" / "file.bin", md5)
    assert got.read_bytes() == src.read_bytes()
    with pytest.raises(NeuralscaleError, match="checksum"):
        fetch(src.as_uri(), tmp_path / "dl" / "bad.bin", "0" * 32)
    assert not (tmp_path / "dl" / "bad.bin").exists() and not list((tmp_path / "dl").glob("*.part"))


def test_download_path_of_a_dataset(tmp_path, monkeypatch):
    """With no local copy, the loader fetches the upstream archive (here from a file:// mirror)."""
    from neuralscale.data import cifar
    mirror = write_cifar(tmp_path / "mirror", "cifar10", per_batch=4, n_test=4)
    md5 = hashlib.md5(mirror.read_bytes()).hexdigest()
    monkeypatch.setitem(cifar.SOURCES["cifar10"], "url", mirror.as_uri())
    monkeypatch.setitem(cifar.SOURCES["cifar10"], "md5", md5)
    (tmp_path / "data").mkdir()
    d = load("cifar10", tmp_path / "data")
    assert len(d.train_y) == 20 and (tmp_path / "data" / "cifar-10-python.tar.gz").exists()


def test_batch_crop_flip_rotate():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    out = random_crop(x, 2, g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    for i in range(2):  # every crop is a shifted window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        assert any(torch.equal(out[i], padded[:, dy:dy + 6, dx:dx + 6]) for dy in range(5) for dx in range(5))
    flipped = random_flip(x.repeat(50, 1, 1, 1), g)
    n_flipped = sum(torch.equal(f, x[i % 2].flip(2)) for i, f in enumerate(flipped))
    assert 20 < n_flipped < 80
    xf = torch.randint(1, 256, (64, 3, 16, 16)).float() / 255.0
    rotated = random_rotate(xf, 20.0, g)
    assert rotated.shape == xf.shape
    # nearest-neighbour, as the original's torchvision RandomRotation: every pixel is one of its image's (or the
    # zero fill), never a blend of two; the corners leave the image (fill) at some angle of every batch
    for src, out in zip(xf, rotated):
        assert set(out.unique().tolist()) <= set(src.unique().tolist()) | {0.0}
    assert (rotated[:, :, 0, 0] == 0).any() and not torch.equal(rotated, xf)
    mean, std = channel_stats(torch.full((4, 3, 2, 2), 100, dtype=torch.uint8))
    assert torch.allclose(mean, torch.full((3,), 100.0)) and torch.all(std < 1e-2)


@pytest.mark.parametrize("channels", [1, 3])
def test_batches_reach_the_model_in_the_layout_asked_for(channels):
    # A crop of a one-channel batch has channels-last strides that also count as contiguous; unless the
    # batch is re-strided, convolutions pick channels-last for the whole network (slow batch norm on CPU).
    from neuralscale.data.augment import DeviceBatches
    x = torch.randint(0, 255, (8, channels, 12, 12), dtype=torch.uint8)
    y = torch.zeros(8, dtype=torch.long)
    mean, std = channel_stats(x)
    conv = torch.nn.Conv2d(channels, 4, 3, padding=1)
    for channels_last in (False, True):
        data = DeviceBatches(x, y, mean, std, torch.device("cpu"), channels_last=channels_last)
        if channels_last:  # as the trainer converts the model
            conv = conv.to(memory_format=torch.channels_last)
        for xb, _ in [next(data.train_batches(4, torch.Generator().manual_seed(0), 2)), next(data.eval_batches(4))]:
            out = conv(xb)
            if channels_last:
                assert out.stride()[1] == 1  # channels innermost
            else:
                assert out.stride() == (4 * 144, 144, 12, 1)
                assert xb.stride() == (channels * 144, 144, 12, 1)


def test_the_tinyimagenet_split_asked_for_is_the_split_loaded_by_every_door(tmp_path):
    """`--tinyimagenet-split original` was parsed and never read, and the API always loaded the official split
    while the record said the one asked for.  Each door now loads it: the official split tests on all 4
    validation images of each of 3 classes (12); the original's on the last 2 of each (6)."""
    import json
    from helpers import run_cli
    from neuralscale.api import train
    from neuralscale.train import TrainConfig
    data = write_tinyimagenet(tmp_path / "data", archive=False, classes=3, train_per_class=6, val_per_class=4)
    data = str(tmp_path / "data")
    common = ["--model", "resnet18", "--dataset", "tinyimagenet", "--data-dir", data]
    quick = ["--epochs", "1", "--batch-size", "8", "--device", "cpu"]

    def loaded(record):  # (the split its record claims, the test images it was evaluated on)
        return record["spec"]["data"].get("tinyimagenet_split", "official"), record["data"]["test"]

    r = run_cli("train", *common, "--ratio", "0.0625", *quick, "--tinyimagenet-split", "original",
                "--out", str(tmp_path / "cli"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert loaded(json.loads((tmp_path / "cli" / "record.json").read_text())) == ("original", 6)
    r = run_cli("train", *common, "--ratio", "0.0625", *quick, "--out", str(tmp_path / "cli-official"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert loaded(json.loads((tmp_path / "cli-official" / "record.json").read_text())) == ("official", 12)

    rec = train("resnet18", "tinyimagenet", ratio=0.0625, data_dir=data, progress=False,
                config=TrainConfig(epochs=1, batch_size=8, device="cpu"), subset={"tinyimagenet_split": "original"})
    assert loaded(rec) == ("original", 6)

    r = run_cli("sweep", *common, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", *quick,
                "--tinyimagenet-split", "original", "--out", str(tmp_path / "sweep"), "--quiet")
    assert r.returncode == 0, r.stderr
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "sweep" / "runs").glob("*/record.json")]
    assert loaded(record) == ("original", 6)

    (tmp_path / "exp.toml").write_text(f"""
[experiment]
model = "resnet18"
dataset = "tinyimagenet"
out = "exp"
device = "cpu"
[data]
data_dir = "{data}"
tinyimagenet_split = "original"
[sweep]
methods = ["uniform"]
ratios = [0.0625]
seeds = [0]
[sweep.train]
epochs = 1
batch_size = 8
""")
    r = run_cli("experiment", str(tmp_path / "exp.toml"), "--quiet")
    assert r.returncode == 0, r.stderr
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "exp" / "runs").glob("*/record.json")]
    assert loaded(record) == ("original", 6)


def test_every_reader_of_a_datasets_protocol_reads_the_one_table(monkeypatch):
    """The descent's settings, the paper's training preset, the sweep preset and the CLI help all come from
    data.info.PROTOCOLS: change the table, and each of them follows."""
    import neuralscale as ns
    from neuralscale.data.info import PROTOCOLS, Protocol, protocol
    from neuralscale.descent import DescentConfig
    from neuralscale.sweep import preset
    from neuralscale.train import paper_config
    tiny = protocol("tinyimagenet")
    assert (tiny.prune_interval, tiny.prune_batch_size, tiny.epochs, tiny.lr_epochs) == (100, 100, 150, (50, 100, 150))
    assert protocol("cifar100").epochs == 300 and protocol("an-image-folder") == protocol("cifar10")
    monkeypatch.setitem(PROTOCOLS, "synthetic", Protocol(prune_interval=7, prune_batch_size=12, prune_crop_padding=1,
                                                         epochs=12, lr_epochs=(4, 7, 10), ratios=(0.5,),
                                                         finetune_epochs=3))
    cfg = DescentConfig().resolve(ns.space("vgg11", "synthetic"))
    assert (cfg.interval, cfg.batch_size, cfg.crop_padding) == (7, 12, 1)
    train = paper_config("synthetic")
    assert train.epochs == 12 and train.milestones == (3 / 12, 6 / 12, 9 / 12)
    sweep = preset("paper", "vgg11", "synthetic")
    assert sweep.ratios == [0.5] and sweep.finetune_epochs == 3


def test_an_empty_cache_or_data_variable_is_unset_not_the_current_folder(monkeypatch):
    """NEURALSCALE_CACHE= or NEURALSCALE_DATA= (set, empty) wrote tensors/ or data into the current folder."""
    from neuralscale.data import default_data_dir
    from neuralscale.data.base import cache_dir
    monkeypatch.setenv("NEURALSCALE_CACHE", "")
    monkeypatch.setenv("NEURALSCALE_DATA", "")
    assert cache_dir() == Path.home() / ".cache" / "neuralscale"
    assert default_data_dir() == Path.home() / ".cache" / "neuralscale" / "data"
    monkeypatch.setenv("NEURALSCALE_CACHE", "/somewhere/cache")
    monkeypatch.setenv("NEURALSCALE_DATA", "/somewhere/data")
    assert cache_dir() == Path("/somewhere/cache") and default_data_dir() == Path("/somewhere/data")


def test_a_datasets_contents_are_checked_as_they_are_read(tmp_path, monkeypatch):
    """An adversarial pass found files in the upstream formats whose contents crashed the trainer (labels
    outside the classes, after training had started), or were read wrong without a word (labels of 1.5 as class
    1, 3 of the 4 IDX files: another folder's data), or a cache that loads but holds other tensors trusted."""
    import gzip
    import pickle
    from helpers import idx_bytes, write_cifar, write_fashion, write_tinyimagenet
    monkeypatch.setenv("NEURALSCALE_CACHE", str(tmp_path / "cache"))

    def cifar_with(member: str, change) -> Path:
        root = tmp_path / f"cifar-{len(list(tmp_path.iterdir()))}"
        d = write_cifar(root, archive=False)
        obj = pickle.loads((d / member).read_bytes(), encoding="bytes")
        change(obj)
        (d / member).write_bytes(pickle.dumps(obj, protocol=2))
        return root

    for member, change, said in [
        ("data_batch_1", lambda o: o.__setitem__(b"labels", [99] * len(o[b"labels"])), "labels include 99, outside"),
        ("data_batch_2", lambda o: o.__setitem__(b"labels", [-1] * len(o[b"labels"])), "labels include -1, outside"),
        ("data_batch_1", lambda o: o.__setitem__(b"labels", None), "its labels are not a list of class numbers"),
        ("data_batch_1", lambda o: o.__setitem__(b"labels", [1.5] * len(o[b"labels"])), "not a list of class numbers"),
        ("batches.meta", lambda o: o.__setitem__(b"label_names", 7), "its class names are not a list"),
        ("test_batch", lambda o: (o.__setitem__(b"labels", []), o.__setitem__(b"data", [])),
         "it holds no test images"),
        # a third pass: a meta file naming 9 classes, or one twice (an export then names each index by them), and
        # images that are not bytes (floats read as black, 300 wrapped to 44)
        ("batches.meta", lambda o: o.__setitem__(b"label_names", o[b"label_names"][:9]),
         "it names 9 different classes of 9, not 10"),
        ("batches.meta", lambda o: o.__setitem__(b"label_names", [b"c0"] * 10), "it names 1 different classes of 10"),
        ("data_batch_3", lambda o: o.__setitem__(b"data", o[b"data"].astype(np.float32) / 255),
         "its images are float32, not bytes"),
    ]:
        with pytest.raises(NeuralscaleError, match=said):
            load("cifar10", cifar_with(member, change))

    archive = write_cifar(tmp_path / "cifar-crc")  # one flipped bit of its checksum: tarfile alone never reads it
    blob = bytearray(archive.read_bytes())
    blob[-8] ^= 1
    archive.write_bytes(bytes(blob))
    with pytest.raises(NeuralscaleError, match=r"is not a readable archive \(CRC check failed"):
        load("cifar10", tmp_path / "cifar-crc")

    ok = write_fashion(tmp_path / "fm-ok")
    deflate = write_fashion(tmp_path / "fm-deflate")  # a damaged deflate stream: zlib's own error, not a traceback
    (deflate / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x07"
                                                         + bytes(64))
    with pytest.raises(NeuralscaleError, match=r"train-images-idx3-ubyte.gz cannot be read \(Error -3"):
        load("fashionmnist", deflate)
    small = write_fashion(tmp_path / "fm-small")
    (small / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((60, 8, 8), np.uint8))))
    with pytest.raises(NeuralscaleError, match="holds 8x8 images; Fashion-MNIST's are 28x28"):
        load("fashionmnist", small)
    huge = write_fashion(tmp_path / "fm-huge")
    (huge / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 4]) + (65536).to_bytes(4, "big")
                                                                    * 4))
    with pytest.raises(NeuralscaleError, match="is truncated or corrupt: header says"):
        load("fashionmnist", huge)
    (tmp_path / "fm-three").mkdir()
    for f in sorted(ok.iterdir())[:3]:
        shutil.copy(f, tmp_path / "fm-three" / f.name)
    with pytest.raises(NeuralscaleError, match="holds 3 of Fashion-MNIST's four IDX files"):
        load("fashionmnist", tmp_path / "fm-three")  # never the system's copy in its place

    tin = write_tinyimagenet(tmp_path / "tin", archive=False, classes=3, train_per_class=2, val_per_class=2)
    (tin / "wnids.txt").write_bytes(b"\xff\xfe n01\n")
    with pytest.raises(NeuralscaleError, match="wnids.txt is not text"):
        load("tinyimagenet", tmp_path / "tin")
    # a third pass: no wnids.txt (a bare FileNotFoundError from the cache key), a class without training images
    # (loaded as if it had none to learn), annotations with spaces (each line dropped) or an image listed twice
    (tin / "wnids.txt").unlink()
    with pytest.raises(NeuralscaleError, match="has no tiny-imagenet-200/wnids.txt; it is not the TinyImageNet"):
        load("tinyimagenet", tmp_path / "tin")

    def tin_with(change) -> Path:
        root = tmp_path / f"tin-{len(list(tmp_path.iterdir()))}"
        change(write_tinyimagenet(root, archive=False, classes=3, train_per_class=2, val_per_class=2))
        return root
    notes = lambda d: (d / "val" / "val_annotations.txt")  # noqa: E731
    for change, said in [
        (lambda d: shutil.rmtree(sorted((d / "train").iterdir())[1]), r"class \w+ of wnids.txt has no training images"),
        (lambda d: notes(d).write_text(notes(d).read_text().replace("\t", " ")), "a line that is not tab-separated"),
        (lambda d: notes(d).write_text(notes(d).read_text() + notes(d).read_text().splitlines()[0] + "\n"),
         "the validation images list val/images/\\S+ twice"),
    ]:
        with pytest.raises(NeuralscaleError, match=said):
            load("tinyimagenet", tin_with(change))

    good = load("fashionmnist", ok)  # cached now; a cache that loads but holds other tensors is read again
    (cached,) = (tmp_path / "cache" / "tensors").glob("fashionmnist-*.pt")
    torch.save({"a": 1}, cached)
    assert torch.equal(load("fashionmnist", ok).train_y, good.train_y)
    torch.save({**torch.load(cached, weights_only=True), "train_y": good.train_y * 0 + 55}, cached)
    assert torch.equal(load("fashionmnist", ok).train_y, good.train_y)
    (tmp_path / "fm-dl" / "fashion-mnist").mkdir(parents=True)  # an interrupted download of its own: resumed
    shutil.copy(sorted(ok.iterdir())[0], tmp_path / "fm-dl" / "fashion-mnist")
    fetched = []
    monkeypatch.setattr("neuralscale.data._fetch", lambda name, d, url, dest, md5, what: (
        fetched.append(dest.name), shutil.copy(ok / dest.name, dest)))
    monkeypatch.setattr("neuralscale.data.fashionmnist.SYSTEM_DIR", tmp_path / "no-system-copy")
    assert len(load("fashionmnist", tmp_path / "fm-dl").train_y) == 60 and len(fetched) == 3
    padded = write_fashion(tmp_path / "fm-32")  # images padded to 32x32 already: read as they are
    (padded / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((60, 32, 32), np.uint8))))
    assert load("fashionmnist", padded).train_x.shape[1:] == (1, 32, 32)


def test_a_dataset_named_wrong_is_one_clear_error_in_the_python_api():
    import neuralscale as ns
    for bad in ("bogus", 5, None):
        with pytest.raises(NeuralscaleError, match="unknown dataset 'bogus'|a dataset is named by a string"):
            ns.paper_config(bad)  # it gave CIFAR's recipe for any name
    with pytest.raises(NeuralscaleError, match="a dataset is named by a string"):
        ns.dataset_info(None)
    assert ns.paper_config("tinyimagenet").epochs == 150 and ns.paper_config("fashionmnist").epochs == 300
    with pytest.raises(NeuralscaleError, match="unknown synthetic option.s. bogus; use num_train"):
        ns.load_dataset("synthetic", synthetic={"bogus": 1})
    with pytest.raises(NeuralscaleError, match="data_dir must be a folder's path, not int"):
        ns.load_dataset("synthetic", data_dir=5)
    with pytest.raises(NeuralscaleError, match="warm_start takes a width space and a network it built"):
        ns.warm_start(ns.space("vgg11", "synthetic"), None, [1] * 8)


def test_a_data_folder_variable_that_names_a_file_is_said_so(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("NEURALSCALE_DATA", str(tmp_path / "f"))  # it said "File exists", naming no variable
    with pytest.raises(NeuralscaleError, match="NEURALSCALE_DATA=.* is not a folder"):
        load("cifar10")


def test_a_subset_larger_than_the_data_is_said_to_be_all_of_it(caplog):
    from neuralscale.data import DataConfig
    with caplog.at_level("INFO", logger="neuralscale"):
        splits = DataConfig("synthetic", train=100_000, test=10).splits(0.1, 0)
    assert splits.sizes()["train"] == 1800 and splits.sizes()["test"] == 10
    assert "a train subset of 100,000 images asked for; synthetic has 1,800: all are used" in caplog.text
    assert "test subset" not in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="neuralscale"):  # all of them, exactly: nothing to say
        assert DataConfig("synthetic", train=1800, test=10).splits(0.1, 0).sizes()["train"] == 1800
    assert "subset" not in caplog.text


def test_what_the_dataset_checks_still_take(tmp_path):
    """A review of the checks above: synthetic data made with its own options (classes, channels, size, no test
    part), and TinyImageNet's original split where it leaves no validation image, are read as before."""
    import neuralscale as ns
    from helpers import write_tinyimagenet
    for options, shape, classes in (({"size": 16}, (3, 16, 16), 10), ({"channels": 1}, (1, 32, 32), 10),
                                    ({"num_classes": 20}, (3, 32, 32), 20)):
        d = ns.load_dataset("synthetic", synthetic=options)
        assert tuple(d.train_x.shape[1:]) == shape and d.info.num_classes == classes
    assert len(ns.load_dataset("synthetic", synthetic={"num_test": 0}).test_y) == 0
    write_tinyimagenet(tmp_path / "tin", archive=False, classes=3, train_per_class=2, val_per_class=1)
    d = load("tinyimagenet", tmp_path / "tin", tinyimagenet_split="original")
    assert len(d.train_y) == 6 and d.val_y is not None and len(d.val_y) == 0


def test_a_datasets_names_and_the_data_settings_a_record_keeps(tmp_path, monkeypatch):
    """A mutation audit of data/__init__.py: names spelled with `_`, a name that starts as imagefolder's without its
    colon, a data folder under ~, the folder given beside a record's settings, what a record's "data" keeps (no
    folder unless asked, no default split, nothing unset), the split's seed for the subsets and a test subset given
    alone all passed data's tests when changed."""
    import neuralscale as ns
    from neuralscale.data import DataConfig
    assert ns.dataset_info("Tiny_ImageNet").name == "tinyimagenet"
    assert ns.dataset_info("fashion_mnist").in_channels == 1
    with pytest.raises(NeuralscaleError, match="unknown dataset 'imagefolderx'"):
        ns.dataset_info("imagefolderx")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert len(load("synthetic", "~", synthetic={"num_train": 20, "num_test": 10}).train_y) == 20  # ~ is home
    config = DataConfig.from_settings("tinyimagenet", {"train": 100, "test": None, "data_dir": "/a",
                                                       "tinyimagenet_split": "original"}, data_dir="/b")
    assert config.data_dir == "/b" and config.test is None
    assert config.settings() == {"train": 100, "tinyimagenet_split": "original"}
    assert config.settings(with_dir=True) == {"train": 100, "tinyimagenet_split": "original", "data_dir": "/b"}
    assert DataConfig("cifar10", test=50).settings() == {"test": 50}
    assert DataConfig.from_settings("cifar10", {"tinyimagenet_split": None}).settings() == {}
    want = load("synthetic").split(0.1, 1).subset(100, None, seed=1)  # the split's seed is the subset's
    got = DataConfig("synthetic", train=100).splits(0.1, split_seed=1)
    assert all(torch.equal(a, b) for a, b in zip(got.train + got.val + got.test, want.train + want.val + want.test))
    assert DataConfig("synthetic", test=50).splits().sizes()["test"] == 50  # a test subset alone is taken too


def test_tinyimagenets_split_is_refused_for_another_dataset():
    """--tinyimagenet-split original on another dataset was taken and ignored (an adversarial pass)."""
    from neuralscale.data import DataConfig
    with pytest.raises(NeuralscaleError, match="--tinyimagenet-split is TinyImageNet's; cifar10 has no other split"):
        DataConfig("cifar10", tinyimagenet_split="original")
    assert DataConfig("tiny-imagenet", tinyimagenet_split="original").tinyimagenet_split == "original"


def test_a_killed_cache_write_leaves_nothing_once_the_cache_is_written(tmp_path, isolated_cache):
    """A SIGKILL while the tensor cache was written left its temporary file (72 MB for Fashion-MNIST) in the cache
    for good; the next write of the same tensors removes it (a user's file beside it stays)."""
    from neuralscale.data.base import save_cached
    tensors = isolated_cache / "cache" / "tensors"
    tensors.mkdir(parents=True)
    killed = tensors / ".synthetic-k.pt.x9y8z7w6.ns.tmp"
    killed.write_bytes(b"half a tensor file")
    mine = tensors / "synthetic-k.pt.notes"
    mine.write_text("mine")
    hidden = tensors / ".synthetic-k.pt.notes"  # the temporary files' prefix, not their name: the user's too
    hidden.write_text("mine")
    save_cached("synthetic", "k", {"x": torch.zeros(2)})
    assert sorted(p.name for p in tensors.iterdir()) == [".synthetic-k.pt.notes", "synthetic-k.pt",
                                                         "synthetic-k.pt.notes"]


def test_the_training_crop_and_flip_in_one_gather_are_the_crop_then_the_flip():
    """random_crop_flip, the one training uses, against random_crop then random_flip from the same draws, image by
    image (a mutation audit: one that never flipped, or took its column offset from the row's, passed)."""
    from neuralscale.data.augment import random_crop_flip
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        fused = random_crop_flip(x, 2, torch.Generator().manual_seed(seed))
        g = torch.Generator().manual_seed(seed)
        assert torch.equal(fused, random_flip(random_crop(x, 2, g), g)), seed
        g = torch.Generator().manual_seed(seed)
        dy, dx = torch.randint(0, 5, (64,), generator=g), torch.randint(0, 5, (64,), generator=g)
        flipped = torch.rand(64, generator=g) < 0.5
        assert 0 < int(flipped.sum()) < 64 and bool((dy != dx).any())
        padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
        for i in range(64):
            crop = padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8]
            assert torch.equal(fused[i], crop.flip(2) if flipped[i] else crop), (seed, i)


# --- a mutation audit (tests that could not fail): each test below failed on a changed line of a reader ------------
def test_no_pickle_a_reader_opens_runs_code(tmp_path, isolated_cache):
    """A CIFAR batch and a tensor cache holding an object that runs code as it is unpickled: refused or rebuilt,
    and the code never runs (the CIFAR test above passed with no allow-list: the object's call failed later)."""
    d = write_cifar(tmp_path, "cifar10", per_batch=4, n_test=4, archive=False)
    batch = pickle.loads((d / "data_batch_2").read_bytes(), encoding="bytes")
    (d / "data_batch_2").write_bytes(pickle.dumps({**batch, b"data": RunsCode(tmp_path / "ran")}, protocol=2))
    with pytest.raises(NeuralscaleError, match="data_batch_2 is not a readable CIFAR batch .unexpected object"):
        load("cifar10", tmp_path)
    assert not (tmp_path / "ran").exists()
    (d / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    good = load("cifar10", tmp_path)
    (cached,) = (isolated_cache / "cache" / "tensors").glob("cifar10-*.pt")
    torch.save({"train_x": RunsCode(tmp_path / "ran")}, cached)
    assert torch.equal(load("cifar10", tmp_path).train_x, good.train_x) and not (tmp_path / "ran").exists()


def test_a_cifar_batch_or_meta_file_of_the_wrong_shape_is_named(tmp_path):
    d = write_cifar(tmp_path, "cifar10", per_batch=4, n_test=4, archive=False)
    batch = pickle.loads((d / "data_batch_3").read_bytes(), encoding="bytes")
    (d / "data_batch_3").write_bytes(pickle.dumps({**batch, b"labels": batch[b"labels"][:-1]}, protocol=2))
    with pytest.raises(NeuralscaleError, match="data_batch_3 has 4 images but 3 labels"):
        load("cifar10", tmp_path)
    (d / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=2))
    (d / "batches.meta").write_bytes(pickle.dumps([b"c0", b"c1"], protocol=2))
    with pytest.raises(NeuralscaleError, match="batches.meta is not a CIFAR batch .no dict inside."):
        load("cifar10", tmp_path)


def test_fashion_mnist_names_its_classes_in_the_upstream_order_and_is_found_where_debian_puts_it(tmp_path,
                                                                                                 monkeypatch):
    write_fashion(tmp_path / "system", n_train=20, n_test=10)
    monkeypatch.setattr("neuralscale.data.fashionmnist.SYSTEM_DIR", tmp_path / "system")
    (tmp_path / "empty").mkdir()
    d = load("fashionmnist", tmp_path / "empty", download=False)
    assert len(d.train_y) == 20 and len(d.test_y) == 10
    assert d.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]


def test_an_idx_file_with_bytes_past_its_data_or_labels_past_the_classes_is_refused(tmp_path):
    from helpers import idx_bytes
    write_fashion(tmp_path, n_train=20, n_test=10, gz=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    good = labels.read_bytes()
    labels.write_bytes(good + b"\x00")
    with pytest.raises(NeuralscaleError, match="t10k-labels-idx1-ubyte is truncated or corrupt"):
        load("fashionmnist", tmp_path)
    labels.write_bytes(idx_bytes(np.full(10, 10, np.uint8)))  # class 10 of 0-9
    with pytest.raises(NeuralscaleError, match="t10k-labels-idx1-ubyte has labels outside 0-9"):
        load("fashionmnist", tmp_path)
    labels.write_bytes(b"\x01" + good[1:])  # a first magic byte that is not 0
    with pytest.raises(NeuralscaleError, match="bad magic number"):
        load("fashionmnist", tmp_path)
    labels.write_bytes(good[:2] + b"\x0d" + good[3:])  # floats: a size that fits bytes, a type that is not bytes
    with pytest.raises(NeuralscaleError, match="bad magic number"):
        load("fashionmnist", tmp_path)


def _tiny_root(tmp_path, **kw):
    return write_tinyimagenet(tmp_path, archive=False, **kw)


def test_tinyimagenets_original_split_gives_each_class_its_first_images_by_number_to_validation(tmp_path):
    """12 validation images per class, val_<k>.JPEG: the first 6 of each class by number (val_2 before val_10) go
    to validation, the last 6 to test; each image is told apart by its pixels."""
    from neuralscale.data import tinyimagenet
    from neuralscale.data.images import decode
    root = _tiny_root(tmp_path, classes=2, train_per_class=1, val_per_class=12)
    got = tinyimagenet.read(root, "original")
    ann = [line.split("\t")[:2] for line in (root / "val" / "val_annotations.txt").read_text().splitlines()]
    wnids = (root / "wnids.txt").read_text().split()
    for c, w in enumerate(wnids):
        files = sorted((f for f, wid in ann if wid == w), key=lambda f: int(f[4:-5]))
        want = [decode((root / "val" / "images" / f).read_bytes(), 64, f) for f in files]
        assert torch.equal(got["val_x"][got["val_y"] == c], torch.stack(want[:6])), w
        assert torch.equal(got["test_x"][got["test_y"] == c], torch.stack(want[6:])), w


def test_tinyimagenets_class_indices_follow_wnids_txt_and_its_classes_are_checked(tmp_path):
    """Labels are positions in wnids.txt (in its order, here not sorted), and the class names follow the same
    order; all 200 of the real dataset's classes are taken; a repeated or unknown class is refused."""
    root = _tiny_root(tmp_path, classes=3, train_per_class=2, val_per_class=2)
    wnids = (root / "wnids.txt").read_text().split()
    order = [wnids[2], wnids[0], wnids[1]]
    (root / "wnids.txt").write_text("\n".join(order) + "\n")
    d = load("tinyimagenet", tmp_path)
    assert d.classes == order
    # class c of the files was drawn brighter by 60 per class: brightness follows each label's wnid
    brightness = {d.classes[y]: d.test_x[d.test_y == y].float().mean().item() for y in range(3)}
    assert brightness[wnids[0]] < brightness[wnids[1]] < brightness[wnids[2]]
    extra = [f"n9{i:07d}" for i in range(197)]
    (root / "wnids.txt").write_text("\n".join(order + extra) + "\n")
    image = sorted((root / "train").rglob("*.JPEG"))[0]
    for w in extra:  # each class with a training image of its own (a class with none is refused)
        (root / "train" / w / "images").mkdir(parents=True)
        shutil.copy(image, root / "train" / w / "images" / f"{w}_0.JPEG")
    assert len(load("tinyimagenet", tmp_path).classes) == 200  # and not refused
    (root / "wnids.txt").write_text("\n".join(order + [order[0]]) + "\n")
    with pytest.raises(NeuralscaleError, match="wnids.txt names 4 classes .3 distinct."):
        load("tinyimagenet", tmp_path)
    (root / "wnids.txt").write_text("\n".join(order[:2]) + "\n")
    with pytest.raises(NeuralscaleError, match=f"val_annotations.txt names unknown class '{order[2]}'"):
        load("tinyimagenet", tmp_path)


def _png(path: Path, arr: np.ndarray) -> Path:
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def test_images_are_decoded_row_by_row_in_rgb_order_and_resized_with_antialiasing(tmp_path):
    from neuralscale.data.images import decode, image_size
    arr = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    f = _png(tmp_path / "a.png", arr)
    assert torch.equal(decode(f.read_bytes(), 6, "a.png"), torch.from_numpy(arr).permute(2, 0, 1))
    # a one-pixel checkerboard of black and white, halved: antialiased, every pixel grey (not black or white)
    board = ((np.indices((32, 32)).sum(0) % 2) * 255).astype(np.uint8)
    small = decode(_png(tmp_path / "b.png", np.stack([board] * 3, -1)).read_bytes(), 16, "b.png")
    assert small.shape == (3, 16, 16) and int(small.min()) > 60 and int(small.max()) < 195
    assert image_size(_png(tmp_path / "c.png", np.zeros((10, 30, 3), np.uint8)).read_bytes(), "c.png") == 30


def test_16_bit_images_are_scaled_and_floating_point_ones_refused(tmp_path):
    from PIL import Image
    from neuralscale.data.images import decode
    grey = np.array([[0, 257 * 100], [65535, 257]], dtype=np.uint16)
    f = _png(tmp_path / "g.png", grey)
    assert Image.open(f).mode == "I;16"
    assert decode(f.read_bytes(), 2, "g.png").tolist() == [[[0, 100], [255, 1]]] * 3
    Image.fromarray(np.array([[0.5, 2.0], [1.0, 0.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(NeuralscaleError, match="f.tif holds floating-point pixels"):
        decode((tmp_path / "f.tif").read_bytes(), 2, "f.tif")


def test_an_image_folder_in_its_other_layouts(tmp_path):
    """val/ for test/, .jpeg files, labels as the sorted class names' positions, a test part without a class, a
    first image that is not square (its longer side), and a test class that training never had (refused)."""
    from PIL import Image
    root = tmp_path / "f"
    for part, n in (("train", 3), ("val", 2)):
        for c, name in enumerate(("b_bright", "a_dark")):
            if part == "val" and name == "a_dark":
                continue  # a test part need not have every class
            for i in range(n):
                img = Image.fromarray(np.full((16, 16 if i else 12, 3), 200 if c == 0 else 20, np.uint8))
                (root / part / name).mkdir(parents=True, exist_ok=True)
                img.save(root / part / name / f"{i}.jpeg")
    d = load(f"imagefolder:{root}")
    assert d.classes == ["a_dark", "b_bright"] and d.info.resolution == 16
    assert d.train_x.shape == (6, 3, 16, 16) and d.test_x.shape == (2, 3, 16, 16) and d.test_y.tolist() == [1, 1]
    dark, bright = (d.train_x[d.train_y == y].float().mean().item() for y in (0, 1))
    assert dark < 60 < 150 < bright
    (root / "val" / "c_new").mkdir()
    shutil.copy(root / "val" / "b_bright" / "0.jpeg", root / "val" / "c_new" / "0.jpeg")
    with pytest.raises(NeuralscaleError, match="has class folders not in train/: c_new"):
        load(f"imagefolder:{root}")


def test_a_split_rounds_each_class_share_and_a_subset_keeps_a_validation_image():
    d = load("synthetic", synthetic=dict(num_train=40, num_test=10, num_classes=10))  # 4 images a class
    s = d.split(0.4, seed=0)  # 1.6 a class: 2
    assert len(s.val[1]) == 20 and len(s.train[1]) == 20
    for bad, seed in (("x", 0), (0.1, -1), (0.1, "0")):  # a TypeError deep inside before (a third pass)
        with pytest.raises(NeuralscaleError, match="validation fraction must be a number in|split seed must be a whole number"):
            load("synthetic", synthetic={"num_train": 40, "num_test": 10}).split(bad, seed)
    for options, said in (({"num_train": -1}, "num_train must be a whole number, at least 1, got -1"),
                          ({"num_train": "x"}, "got 'x'"), ({"num_classes": 1}, "num_classes must be a whole number, "
                                                                               "at least 2"), ([1], "are a dict")):
        with pytest.raises(NeuralscaleError, match=said):
            load("synthetic", synthetic=options)
    with pytest.raises(NeuralscaleError, match=r"validation fraction must be a number in \[0, 1\), got 1"):
        d.split(1)
    big = load("synthetic", synthetic=dict(num_train=1000, num_test=10)).split(0.01, seed=0)
    assert len(big.subset(train=10).val[1]) == 1  # 10 * 10 / 990 rounds to 0: one kept


def test_a_split_and_a_subset_keep_the_order_the_classes_and_the_seed_and_a_split_may_take_no_validation():
    """A mutation audit of data/base.py: a subset's images out of their order, its seed ignored, the class names
    dropped by a split or a subset, and a validation fraction of 0 refused all passed the tests."""
    from neuralscale.data.base import ImageData
    from neuralscale.data.info import KNOWN
    n = 100
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 32, 32).clone()  # each image its index
    y = torch.arange(n) % 10
    names = [f"c{k}" for k in range(10)]
    data = ImageData(KNOWN["synthetic"], x, y, x[:20].clone(), y[:20].clone(), classes=names)

    def ids(part):
        return part[0][:, 0, 0, 0].tolist()
    s = data.split(0.1, seed=0)
    assert sorted(ids(s.train) + ids(s.val)) == list(range(n)) and s.classes == names
    subsets = [s.subset(train=30, test=8, seed=seed) for seed in (1, 2, 3)]
    for sub in subsets:
        assert sub.sizes() == {"train": 30, "val": 3, "test": 8} and sub.classes == names
        for part in (sub.train, sub.val, sub.test):
            assert ids(part) == sorted(ids(part))  # in the order of the data they are drawn from
    assert len({tuple(ids(sub.train)) for sub in subsets}) == 3  # each seed its own subset
    assert ids(s.subset(train=30, test=8, seed=2).train) == ids(subsets[1].train)
    none = data.split(0.0)
    assert none.sizes() == {"train": n, "val": 0, "test": 20}


def test_what_a_datasets_tensors_must_be():
    """tensor_problem, case by case (a mutation audit: images not uint8, labels not int64 or not one a image, a
    validation part of labels alone, an empty image tensor beside labels, and a table that is not a dict passed)."""
    from neuralscale.data.base import tensor_problem
    from neuralscale.data.info import DatasetInfo
    info = DatasetInfo("tiny", 3, 1, 4)
    images, labels = torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 2])
    good = {"train_x": images, "train_y": labels, "test_x": images, "test_y": labels}
    assert tensor_problem(info, good) == ""
    for change, says in (
            ({"train_x": images.float()}, "its train images are (1, 4, 4) float32, not tiny's 1x4x4 uint8"),
            ({"train_y": labels.int()}, "its train labels are not one integer per image (2 images, labels of "
                                        "shape (2,))"),
            ({"test_y": labels.view(2, 1)}, "its test labels are not one integer per image (2 images, labels of shape "
                                            "(2, 1))"),
            ({"train_x": images[:0]}, "its train labels are not one integer per image (0 images"),
            ({"val_y": labels}, "its val images or labels are missing"),
            ({"test_x": images[:0], "test_y": labels[:0]}, "it holds no test images")):
        assert tensor_problem(info, {**good, **change}).startswith(says), change
    assert tensor_problem(info, {**good, "test_x": images[:0], "test_y": labels[:0]}, need_test=False) == ""
    assert tensor_problem(info, [images, labels]) == "not a table of tensors"


def test_a_data_file_changed_in_place_at_the_same_size_is_read_again(tmp_path, isolated_cache):
    """The tensor cache's key holds each source file's size and modification time: a labels file rewritten with
    other labels of the same size is read again, not served from the cache."""
    import os
    from helpers import idx_bytes
    write_fashion(tmp_path, n_train=20, n_test=10, gz=False)
    first = load("fashionmnist", tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    st = labels.stat()
    labels.write_bytes(idx_bytes(9 - first.test_y.numpy()))
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert labels.stat().st_size == st.st_size
    assert torch.equal(load("fashionmnist", tmp_path).test_y, 9 - first.test_y)


def test_an_extracted_cifar_folder_changed_inside_is_read_again(tmp_path, isolated_cache):
    """A bug the mutation audit found: the cache key of an extracted CIFAR or TinyImageNet folder
    holds the folder's (and, for TinyImageNet, train/'s and val/'s) own size and time, not its files': a batch file
    replaced in place, or a training image removed, leaves the old tensors served from the cache."""
    import os
    d = write_cifar(tmp_path / "c", "cifar10", per_batch=4, n_test=4, archive=False)
    first = load("cifar10", tmp_path / "c")
    batch = pickle.loads((d / "test_batch").read_bytes(), encoding="bytes")
    st = (d / "test_batch").stat()
    (d / "test_batch").write_bytes(pickle.dumps({**batch, b"labels": [9 - y for y in batch[b"labels"]]}, protocol=2))
    os.utime(d / "test_batch", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert torch.equal(load("cifar10", tmp_path / "c").test_y, 9 - first.test_y)


def test_an_extracted_tinyimagenet_folder_changed_inside_is_read_again(tmp_path, isolated_cache):
    """The same as the test above: a training image removed from the extracted folder."""
    root = write_tinyimagenet(tmp_path / "t", archive=False, classes=3, train_per_class=4, val_per_class=2)
    assert len(load("tinyimagenet", tmp_path / "t").train_y) == 12
    sorted((root / "train").rglob("*.JPEG"))[0].unlink()
    assert len(load("tinyimagenet", tmp_path / "t").train_y) == 11


def test_a_folder_with_a_broken_link_or_a_link_to_itself_is_still_read(tmp_path, isolated_cache):
    """A folder's cache key lists every file beneath it: a dangling link is keyed as itself, and a link back up the
    tree is not followed (it would never end)."""
    d = write_cifar(tmp_path / "c", "cifar10", per_batch=4, n_test=4, archive=False)
    (d / "dangling").symlink_to(tmp_path / "nowhere")
    (d / "loop").symlink_to(d, target_is_directory=True)
    assert len(load("cifar10", tmp_path / "c").test_y) == 4


def test_an_image_folder_whose_parts_are_links_is_read_again_when_the_linked_files_change(tmp_path, isolated_cache):
    """train/ and test/ linked to folders elsewhere (a data set kept once, linked into several folders): the key
    held each link's own size and time, so images added behind it were never read (a third adversarial pass)."""
    import shutil
    store = write_imagefolder(tmp_path / "store", classes=2, per_class=5, size=32)
    (tmp_path / "f").mkdir()
    for part in ("train", "test"):
        (tmp_path / "f" / part).symlink_to(store / part, target_is_directory=True)
    name = f"imagefolder:{tmp_path / 'f'}"
    before = len(load(name).train_y)
    for i in range(3):
        shutil.copy(sorted((store / "train" / "class_0").iterdir())[0], store / "train" / "class_1" / f"extra{i}.png")
    assert len(load(name).train_y) == before + 3


@pytest.mark.parametrize("key, change, says", [
    ("train_y", lambda t: t["train_y"] * 0 + 10, "labels include 10, outside cifar10's classes 0-9"),
    ("train_x", lambda t: t["train_x"][:, :, :16, :16].contiguous(), "train images are (3, 16, 16) uint8"),
    ("train_y", lambda t: t["train_y"][:-1], "train labels are not one integer per image"),
])
def test_a_cache_of_other_tensors_is_rebuilt(tmp_path, isolated_cache, key, change, says):
    from neuralscale.data import info as ds_info
    from neuralscale.data.base import tensor_problem
    write_cifar(tmp_path, "cifar10", per_batch=4, n_test=4)
    good = load("cifar10", tmp_path)
    (cached,) = (isolated_cache / "cache" / "tensors").glob("cifar10-*.pt")
    tensors = torch.load(cached, weights_only=True)
    bad = {**tensors, key: change(tensors)}
    assert says in tensor_problem(ds_info.KNOWN["cifar10"], bad)
    torch.save(bad, cached)
    assert torch.equal(getattr(load("cifar10", tmp_path), key), getattr(good, key))


def test_a_download_without_a_checksum_and_one_that_ends_leave_no_part_file(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"data" * 10)
    got = fetch(src.as_uri(), tmp_path / "dl" / "f.bin")
    assert got.read_bytes() == src.read_bytes() and sorted(p.name for p in got.parent.iterdir()) == ["f.bin"]


def test_the_datasets_shapes_and_the_originals_protocol_constants():
    """What the paper's recipes take from each dataset: TinyImageNet's rotation and its descent's crop padding,
    its baselines' fine-tuning; CIFAR's random crops' padding and batch size."""
    from neuralscale.data.info import KNOWN, DatasetInfo, protocol
    assert KNOWN["tinyimagenet"].rotate == 20.0 and KNOWN["cifar10"].rotate == 0.0
    assert KNOWN["cifar10"].crop_padding == KNOWN["tinyimagenet"].crop_padding == 4
    tiny, cifar = protocol("tinyimagenet"), protocol("cifar10")
    assert (tiny.prune_crop_padding, tiny.finetune_epochs, tiny.ratios) == (0, 20, (0.25, 0.5, 0.75, 1.0))
    assert (tiny.prune_schedule, cifar.prune_schedule) == ("prune-tinyimagenet", "prune")  # the descent's schedules
    assert (cifar.prune_crop_padding, cifar.finetune_epochs, cifar.batch_size, cifar.prune_interval) == \
        (None, 40, 128, 50)
    for field in ("num_classes", "in_channels", "resolution"):
        with pytest.raises(NeuralscaleError, match=f"{field} must be a whole number of at least 1, got 0"):
            DatasetInfo("x", **{"num_classes": 2, "in_channels": 1, "resolution": 8, field: 0})
        with pytest.raises(NeuralscaleError, match=f"{field} must be a whole number of at least 1, got True"):
            DatasetInfo("x", **{"num_classes": 2, "in_channels": 1, "resolution": 8, field: True})


def test_the_digest_names_the_images_as_read_and_changes_when_one_is_replaced(tmp_path, isolated_cache):
    """Runs compared the sizes of their splits only: an image replaced by another (a folder's counts unchanged)
    went unnoticed by a resume, a sweep and a report. A dataset read from files carries a digest of its images,
    labels and class names: the same read from the cache and read again (no cache), carried by its splits and
    subsets, in each run's `identity()`; one image replaced changes it; made data (synthetic, a user's own
    ImageData) has none. `same_data` compares only what both say (a record from before digests)."""
    import os

    from PIL import Image

    from neuralscale.data import same_data
    from neuralscale.data.base import content_digest
    folder = write_imagefolder(tmp_path / "f", classes=2, per_class=4, size=32)
    name = f"imagefolder:{folder}"
    first = load(name)
    assert isinstance(first.digest, str) and len(first.digest) == 16 and first.digest == content_digest(
        {**first.tensors(), "classes": first.classes})
    assert load(name).digest == first.digest  # from the cache
    (cached,) = (isolated_cache / "cache" / "tensors").glob("*.pt")
    old = {k: v for k, v in torch.load(cached, weights_only=True).items() if k != "digest"}
    torch.save(old, cached)  # a cache written before digests were kept: computed, the same, and kept there
    assert load(name).digest == first.digest
    assert torch.load(cached, weights_only=True)["digest"] == first.digest
    splits = first.split(0.25, seed=3)
    assert splits.identity() == {"train": 6, "val": 2, "test": 4, "digest": first.digest}
    assert splits.subset(train=3, seed=1).identity()["digest"] == first.digest
    image = folder / "train" / "class_1" / "img0.png"
    st = image.stat()
    Image.fromarray(np.full((32, 32, 3), 7, np.uint8)).save(image)  # another image, the counts as they were
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    replaced = load(name)
    assert replaced.digest != first.digest and len(replaced.train_y) == len(first.train_y)
    assert not same_data(splits.identity(), replaced.split(0.25, seed=3).identity())
    assert same_data(splits.sizes(), replaced.split(0.25, seed=3).identity())  # nothing else to compare
    assert not same_data({"train": 5}, splits.identity())
    assert load("synthetic", synthetic={"num_train": 20, "num_test": 4}).digest is None
    assert "digest" not in load("synthetic", synthetic={"num_train": 20, "num_test": 4}).split().identity()
