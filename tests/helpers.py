"""What tests share: small files in the exact upstream formats, the command line run in-process or as a real
subprocess, and physical pruning compared with masking step by step.  Import from here (`from helpers import
write_cifar`); conftest.py holds only fixtures."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image


SYNTH = ["--model", "vgg11", "--dataset", "synthetic"]
# tiny training runs on synthetic data, as the sweep and report tests train them
TINY_RUN_ARGS = [*SYNTH, "--train-subset", "160", "--test-subset", "40", "--batch-size", "32", "--device", "cpu",
                 "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine"]


def strict_json(path: Path):
    """Parse as a strict reader would: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"{path} holds {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


# The one tiny descent most tests read (conftest.tiny_descent): VGG11 at 1/16 width on synthetic data, two
# iterations.  Tiny networks on synthetic data: pruning goes past one channel and a fallback law is accepted (the
# stop rule and row counts are tested on their own, in test_fidelity.py and test_demo.py).  Rows from the first
# pruning step (per-layer): a row for every step, so both iterations are fits whatever the host's rounding. Under
# the original's rule (rows once every layer has lost a channel) conv1's 4 channels sometimes all survive, and
# iteration 1 had no rows at all on two threads (a plain `pytest` on two cores), where the tests read it as a fit.
TINY_DESCENT = dict(iterations=2, warmup_epochs=1, k=3, interval=2, prune_fraction=0.8, batch_size=64,
                    base_ratio=0.0625, prune_past_one=True, allow_fallback=True, trajectory_start="per-layer",
                    device="cpu")
TINY_DESCENT_TRAIN = 256  # training images
# the same descent as command-line arguments (after `descend`)
TINY_DESCENT_ARGS = ["--model", "vgg11", "--dataset", "synthetic", "--base-ratio", "0.0625", "--iterations", "2",
                     "--warmup-epochs", "1", "--prune-k", "3", "--prune-interval", "2", "--prune-fraction", "0.8",
                     "--batch-size", "64", "--train-subset", str(TINY_DESCENT_TRAIN), "--device", "cpu",
                     "--prune-past-one", "--allow-fallback", "--trajectory-start", "per-layer"]


def learnable_images(n: int, classes: int, channels: int, size: int, seed: int = 0):
    """uint8 NCHW images whose class shows in their mean colour, and labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    base = (y[:, None, None, None] * (200 // max(classes - 1, 1))).astype(np.float64)
    x = base + rng.normal(0, 20, size=(n, channels, size, size))
    return np.clip(x, 0, 255).astype(np.uint8), y


# --- CIFAR: python-pickle batches, protocol 2, bytes keys, as upstream ---------
def _cifar_batch(x, labels, key):
    return pickle.dumps({b"batch_label": b"batch", key: [int(v) for v in labels],
                         b"data": x.reshape(len(x), -1), b"filenames": [b"f%d.png" % i for i in range(len(x))]},
                        protocol=2)


def write_cifar(root: Path, name: str = "cifar10", per_batch: int = 20, n_test: int = 20, archive: bool = True) -> Path:
    if name == "cifar10":
        folder, classes, key = "cifar-10-batches-py", 10, b"labels"
        members = {f"data_batch_{i}": per_batch for i in range(1, 6)} | {"test_batch": n_test}
        meta = ("batches.meta", {b"label_names": [b"c%d" % i for i in range(10)], b"num_vis": 3072})
    else:
        folder, classes, key = "cifar-100-python", 100, b"fine_labels"
        members = {"train": per_batch * 5, "test": n_test}
        meta = ("meta", {b"fine_label_names": [b"c%d" % i for i in range(100)], b"coarse_label_names": [b"x"] * 20})
    files = {}
    for i, (m, n) in enumerate(members.items()):
        x, y = learnable_images(n, classes, 3, 32, seed=i)
        files[m] = _cifar_batch(x, y, key)
    files[meta[0]] = pickle.dumps(meta[1], protocol=2)
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        path = root / ("cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz")
        with tarfile.open(path, "w:gz") as tar:
            for m, blob in files.items():
                info = tarfile.TarInfo(f"{folder}/{m}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        return path
    d = root / folder
    d.mkdir()
    for m, blob in files.items():
        (d / m).write_bytes(blob)
    return d


# --- Fashion-MNIST: IDX, big-endian header ---------------------------------------
def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_fashion(root: Path, n_train: int = 60, n_test: int = 20, gz: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    xtr, ytr = learnable_images(n_train, 10, 1, 28, seed=1)
    xte, yte = learnable_images(n_test, 10, 1, 28, seed=2)
    for stem, arr in (("train-images-idx3-ubyte", xtr[:, 0]), ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte[:, 0]), ("t10k-labels-idx1-ubyte", yte)):
        blob = idx_bytes(arr)
        if gz:
            (root / (stem + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (root / stem).write_bytes(blob)
    return root


class RunsCode:
    """An object that, unpickled by a full unpickler (not a weights-only or allow-listed one), creates the file
    `path`: as a hostile data or weights file would run code. Pickle one where a reader takes a pickle, and check
    that `path` does not exist afterwards."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return Path.touch, (self.path,)


# --- TinyImageNet: the official zip layout ---------------------------------------
def _jpeg(arr_chw: np.ndarray, gray: bool = False) -> bytes:
    img = Image.fromarray(arr_chw.transpose(1, 2, 0))
    if gray:
        img = img.convert("L")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def tinyimagenet_files(classes: int = 3, train_per_class: int = 6, val_per_class: int = 4) -> dict[str, bytes]:
    wnids = [f"n{1000 + i:08d}" for i in range(classes)]
    files = {"wnids.txt": ("\n".join(wnids) + "\n").encode(),
             "words.txt": "".join(f"{w}\tthing {i}\n" for i, w in enumerate(wnids)).encode()}
    for c, w in enumerate(wnids):
        x, _ = learnable_images(train_per_class, 1, 3, 64, seed=c)
        x = np.clip(x.astype(int) + c * 60, 0, 255).astype(np.uint8)
        boxes = []
        for i in range(train_per_class):
            files[f"train/{w}/images/{w}_{i}.JPEG"] = _jpeg(x[i], gray=(i == 0))
            boxes.append(f"{w}_{i}.JPEG\t0\t0\t63\t63")
        files[f"train/{w}/{w}_boxes.txt"] = ("\n".join(boxes) + "\n").encode()
    ann, k = [], 0
    for i in range(val_per_class):
        for c, w in enumerate(wnids):
            x, _ = learnable_images(1, 1, 3, 64, seed=100 + k)
            files[f"val/images/val_{k}.JPEG"] = _jpeg(np.clip(x[0].astype(int) + c * 60, 0, 255).astype(np.uint8))
            ann.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63")
            k += 1
    files["val/val_annotations.txt"] = ("\n".join(ann) + "\n").encode()
    files["test/images/test_0.JPEG"] = _jpeg(learnable_images(1, 1, 3, 64)[0][0])
    return files


def write_tinyimagenet(root: Path, archive: bool = True, **kw) -> Path:
    files = tinyimagenet_files(**kw)
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        path = root / "tiny-imagenet-200.zip"
        with zipfile.ZipFile(path, "w") as z:
            for rel, blob in files.items():
                z.writestr(f"tiny-imagenet-200/{rel}", blob)
        return path
    for rel, blob in files.items():
        p = root / "tiny-imagenet-200" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)
    return root / "tiny-imagenet-200"


def write_imagefolder(root: Path, classes: int = 3, per_class: int = 6, size: int = 24, seed: int = 0) -> Path:
    for part, n in (("train", per_class), ("test", 2)):
        for c in range(classes):
            d = root / part / f"class_{c}"
            d.mkdir(parents=True, exist_ok=True)
            x, _ = learnable_images(n, 1, 3, size, seed=c + 1000 * seed)
            for i in range(n):
                arr = np.clip(x[i].astype(int) + c * 70, 0, 255).astype(np.uint8)
                Image.fromarray(arr.transpose(1, 2, 0)).save(d / f"img{i}.png")
    return root


class Command:
    """A `neuralscale` command (or, with `code`, `python -c code args`) forked from tests/cli_zygote.py: a real
    process (its own pid, optionally its own session, its directory, its exit status, its streams), started without
    re-importing torch. Popen's interface, in part. Several may run at once; a reader thread files the zygote's
    answers by request id."""

    _zygote: subprocess.Popen | None = None
    _answers: dict = {}
    _cond = None
    _ids = 0

    @classmethod
    def _start_zygote(cls) -> subprocess.Popen:
        import threading
        z = cls._zygote
        if z is not None and z.poll() is None:
            return z
        z = cls._zygote = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cli_zygote.py"))],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        cls._cond = threading.Condition()

        def read(out=z.stdout, cond=cls._cond):
            for line in out:
                msg = json.loads(line)
                with cond:
                    cls._answers.setdefault(msg["id"], {}).update(msg)
                    cond.notify_all()
            with cond:  # the zygote is gone: nobody waits forever
                cls._answers["gone"] = True
                cond.notify_all()
        threading.Thread(target=read, daemon=True).start()
        return z

    def _await(self, key: str, timeout: float | None) -> dict | None:
        with Command._cond:
            Command._cond.wait_for(lambda: key in Command._answers.get(self._id, {}) or "gone" in Command._answers,
                                   timeout)
            answer = Command._answers.get(self._id, {})
        if key not in answer and "gone" in Command._answers:
            raise RuntimeError("tests/cli_zygote.py has died; see the test output for its error")
        return answer if key in answer else None

    def __init__(self, args, env: dict | None = None, new_session: bool = False, file_size_limit: int | None = None,
                 code: str | None = None, cwd: str | Path | None = None):
        import tempfile
        cwd = os.path.abspath(cwd or os.getcwd())  # as subprocess takes it: from here, and refused here if missing
        if not os.path.isdir(cwd):
            raise FileNotFoundError(f"no such directory: {cwd!r}")
        z = Command._start_zygote()
        Command._ids += 1
        self._id = f"{os.getpid()}-{Command._ids}"
        self._dir = Path(tempfile.mkdtemp(prefix="ns-cli-"))
        umask = os.umask(0)  # read (only by setting it), and put back at once
        os.umask(umask)
        req = {"id": self._id, "args": [str(a) for a in args], "env": {**os.environ, **(env or {})},
               "cwd": cwd, "umask": umask, "stdout": str(self._dir / "out"), "stderr": str(self._dir / "err"),
               "new_session": new_session, "file_size_limit": file_size_limit, "code": code}
        z.stdin.write((json.dumps(req) + "\n").encode())
        answer = self._await("pid", 300)  # the first of a test process also waits for the zygote's imports (about 5 s
        # here): the bound only stops a hung test, on the slowest host beside other work
        if answer is None:
            raise RuntimeError("tests/cli_zygote.py did not start the command within 300 s")
        self.pid: int = answer["pid"]
        self.returncode: int | None = None
        self.stdout = self.stderr = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            answer = self._await("returncode", timeout)
            if answer is None:
                raise subprocess.TimeoutExpired("neuralscale", timeout)
            self.returncode = answer["returncode"]
            with Command._cond:
                Command._answers.pop(self._id, None)
            self.stdout, self.stderr = ((self._dir / n).read_text() if (self._dir / n).exists() else ""
                                        for n in ("out", "err"))
            shutil.rmtree(self._dir, ignore_errors=True)
        return self.returncode

    def poll(self) -> int | None:
        """Its exit status if it has ended, else None (Popen.poll)."""
        try:
            return self.wait(timeout=0)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:  # it has ended and been reaped already
                pass

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        return self.stdout, self.stderr


class GroupedNet(torch.nn.Module):
    """A CNN whose middle layer is a grouped convolution of 4 groups: the layer it reads (16 channels) moves in steps
    of 4, the last (8) in steps of 1."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.grouped = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=4), nn.BatchNorm2d(16), nn.ReLU())
        self.last = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.last(self.grouped(self.stem(x))).mean([2, 3]))


class LeNetNoNorm(torch.nn.Module):
    """LeNet-5 as tutorials write it, for 1-channel 32x32 images: no batch norm, three linear layers, a view,
    dropout and log_softmax as functions, PyTorch's default initialisation."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        F = torch.nn.functional
        x = F.max_pool2d(F.relu(self.conv2(F.max_pool2d(F.relu(self.conv1(x)), 2))), 2)
        x = F.relu(self.fc1(x.view(x.size(0), -1)))
        return F.log_softmax(self.fc3(F.dropout(F.relu(self.fc2(x)), 0.2, self.training)), dim=1)


def run_cli(*args: str, env: dict | None = None, timeout: int = 300,
            file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """The real `neuralscale` command in its own process (a fork of tests/cli_zygote.py, which has imported
    torch once: about 1 s saved per command). The README's first line, the bad-input sample and the GPU check
    start a new interpreter instead (run_real_cli, subprocess).
    `file_size_limit`: bytes past which the kernel refuses the process's writes (and its workers'), as a full
    disk refuses them."""
    cmd = Command(args, env, file_size_limit=file_size_limit)
    out, err = cmd.communicate(timeout)
    return subprocess.CompletedProcess([sys.executable, "-m", "neuralscale", *args], cmd.returncode, out, err)


def run_python(code: str, *args: str, env: dict | None = None, cwd: str | Path | None = None,
               timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -c code args...` in a process of its own, forked from tests/cli_zygote.py (torch, torchvision and
    neuralscale already imported, nothing run): for a test whose point is a separate process (a model loaded with
    none of the test's state), not what a new interpreter imports or how it starts (those use subprocess)."""
    cmd = Command(args, env, code=code, cwd=cwd)
    out, err = cmd.communicate(timeout)
    return subprocess.CompletedProcess([sys.executable, "-c", code, *args], cmd.returncode, out, err)


def run_real_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m neuralscale ...` started as a new interpreter, as a user starts it."""
    return subprocess.run([sys.executable, "-m", "neuralscale", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


# --- physical pruning against masking, compared step by step from one state -----------------------------------
def _embed(full: "torch.Tensor", small: "torch.Tensor", dims: list, idx: list) -> "torch.Tensor":
    """`full` with the entries that `small` holds (at channel indices `idx` along `dims`) replaced by `small`."""
    import torch
    index = []
    for d, size in enumerate(full.shape):
        i = (idx[dims.index(d)] if d in dims else torch.arange(size)).to(full.device)
        shape = [1] * full.dim()
        shape[d] = -1
        index.append(i.view(shape))
    out = full.clone()
    out[tuple(index)] = small.to(full.device, full.dtype)
    return out


def lockstep_pruning(space, widths, splits, *, steps: int, k: int, interval: int, lr: float, batch_size: int,
                     device: str = "cpu", dtype: str = "float64"):
    """Prune one network physically and one by masking, restored to one state before every step.

    Before each step, the masked network takes the physical network's weights, batch-norm statistics and
    momentum at the surviving channels (and its pruning masks), so that both start the interval from the
    same state; both then train on the same `interval` batches.  Returns, per step, the largest relative
    difference of the two score vectors and whether the two choices agree where the choice is decided
    (the k-th and (k+1)-th lowest scores more than 1e-6 apart); the physical choice is applied to both.
    A float64 comparison of whole runs instead would depend on rounding: tiny differences grow with
    training until some near-tie is decided differently, at a step that depends on the host's arithmetic.
    """
    import torch

    from neuralscale.graph import ChannelGraph
    from neuralscale.pruning import TaylorPruner
    from neuralscale.train import Trainer, TrainConfig

    cfg = TrainConfig(epochs=1, batch_size=batch_size, lr=lr, augment=False, device=device, schedule="constant",
                      warmup_epochs=0, dtype=dtype, amp=False, channels_last=False)
    torch.manual_seed(0)
    model = space.build(widths)
    masked = space.build(widths)
    masked.load_state_dict(model.state_dict())
    never = 10 ** 9  # the test decides when to prune
    phys = TaylorPruner(space, widths, k=k, interval=never, warmup_epochs=0, prune_fraction=0.95)
    mask = TaylorPruner(space, widths, k=k, interval=never, warmup_epochs=0, prune_fraction=0.95, physical=False)
    tp = Trainer(model, splits, cfg, callbacks=[phys], progress=False)
    tm = Trainer(masked, splits, cfg, callbacks=[mask], progress=False)
    phys.on_train_start(tp), mask.on_train_start(tm)
    assert phys.session.physical, phys.session.notes
    mapping = ChannelGraph(space, widths).slices
    original = [torch.arange(w) for w in widths]  # the full index of each surviving channel, per layer
    gen = torch.Generator(device=tp.device if tp.device.type == "cuda" else "cpu").manual_seed(0)

    def batches():
        while True:
            yield from tp.train_data.train_batches(batch_size, gen, 0, 0.0, augment=False)
    data = batches()
    results = []
    for _ in range(steps):
        for _ in range(interval):
            x, y = next(data)
            tp.train_step(x, y)
            tm.train_step(x, y)
        sp_ = [phys.session.importance.score(layer) for layer in phys.session.layers]
        sm_ = [mask.session.importance.score(layer)[a] for layer, a in zip(mask.session.layers, mask.session.alive)]
        tiny = 1e-300 if dtype == "float64" else 1e-30
        rel = max(float(((a - b).abs() / b.abs().clamp_min(tiny)).max()) for a, b in zip(sp_, sm_) if len(a))
        flat = torch.sort(torch.cat(sp_)).values
        n = min(k, len(flat) - 1)
        decided = bool(flat[n] - flat[n - 1] > (1e-6 if dtype == "float64" else 1e-3) * flat[n].abs())
        chosen_p = {(layer, int(original[layer][i])) for layer, i in phys.session.choose()}
        chosen_m = set(mask.session.choose())
        results.append({"rel": rel, "decided": decided, "same": chosen_p == chosen_m})
        keep = [torch.ones(len(o), dtype=torch.bool) for o in original]
        for layer, i in phys.session.choose():
            keep[layer][i] = False
        phys.prune_step(tp)
        if phys.done:
            break
        original = [o[kp] for o, kp in zip(original, keep)]
        original = [o.cpu() for o in original]
        # restore the masked network to the physical one's state, at the surviving channels
        dims = {key: [d for d, _, _ in entries] for key, entries in mapping.items()}
        index = {key: [original[layer] if block == 1 else
                       (original[layer][:, None] * block + torch.arange(block)).flatten()
                       for _, layer, block in entries] for key, entries in mapping.items()}
        small, full = tp.model.state_dict(), tm.model.state_dict()
        tm.model.load_state_dict({key: _embed(full[key], small[key], dims[key], index[key]) for key in full})
        for (name, p_m), (_, p_p) in zip(tm.model.named_parameters(), tp.model.named_parameters()):
            buf = tp.optimizer.state.get(p_p, {}).get("momentum_buffer")
            if buf is not None:
                tm.optimizer.state[p_m]["momentum_buffer"] = _embed(
                    tm.optimizer.state[p_m].get("momentum_buffer", torch.zeros_like(p_m)), buf,
                    dims[name], index[name])
        for layer, o in enumerate(original):
            mask.session.alive[layer] = torch.zeros(widths[layer], dtype=torch.bool)
            mask.session.alive[layer][o] = True
        mask.session.importance.reset()
        mask.session.batches = 0
        mask.session.attach(tm.model, tm.device)
    return results
