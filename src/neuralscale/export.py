"""A scaled model as a file pair: its widths (JSON) and its weights, rebuildable with one call; ONNX export.

    NAME.json   {"format": "neuralscale-model", "model", "dataset", "convcut", "layers", "widths", "params",
                 "macs", "params_share", "macs_share", "input_shape", "num_classes", "data": {...},
                 "classes": [names], "preprocessing": {"input", "mean", "std", "in_onnx" (NAME.onnx holds it,
                 written, and checked where onnxruntime is installed)}, "weights_sha256" (NAME.pt's bytes: another
                 file in its place is refused), "onnx_writing" (only while NAME.onnx is written), ...}
    NAME.pt     the state dict of the network (torch.save; loads with weights_only=True)
    NAME.onnx   the network with its preprocessing in the graph: input "images", float32 N x C x H x W
                pixel values 0-255 (C: 3 RGB, or 1 for grey datasets) at input_shape; output "logits"

`load_model("NAME.json")` rebuilds the width space, builds it at the widths and
loads the weights; a model exported from a run takes images as pixel values 0-255 (`Pixels`: the training's
per-channel normalisation, then the network), as its ONNX file does; `pixels=False` gives the bare network,
which takes normalised inputs.  The JSON carries what the model needs to know of its data
(input shape, class names, normalisation), so loading needs no dataset; a space of your own
(`neuralscale.space(model, example_input)`) is passed as `space=`.  `to_onnx` exports a model (the optional extra
`neuralscale[onnx]`) and, where onnxruntime is installed, checks that the
exported model gives the same outputs as the PyTorch one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from .command import optional_import
from .data.info import images_made
from .validate import check_flags, check_paths, expand
from .errors import NeuralscaleError
from .descent import is_descent_dir
from .guard import check_new_file
from .layout import RunDir, StoreDir
from .store import read_record
from .train import read_run_weights, resolve_device, unloadable
from .zoo import CONVCUT, model_identity, model_spelling, record_model, record_space
from .records import NAMED_SUFFIXES, atomic_write, atomic_write_json, clear_temps, exclusive_name, read_text
from .space import WidthSpace

log = logging.getLogger(__name__)

FORMAT = "neuralscale-model"
def pixels_text(dataset: str) -> str:
    """What an exported network takes: pixels made from an image as the dataset's reader made its training ones."""
    return ("float32 N x C x H x W pixel values 0-255 (C: RGB, or one grey channel) at input_shape: "
            f"{images_made(dataset)}")


class Pixels(nn.Module):
    """A network that takes images as pixel values 0-255: (x - mean) / std per channel (the normalisation it
    was trained with, in the same units), then the network."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def save_model(path: str | Path, model: nn.Module, space, widths, extra: dict | None = None) -> tuple[Path, Path]:
    """Write PATH.json (widths and identity) and PATH.pt (weights); returns both paths."""
    base = stem(path)
    meta = {"format": FORMAT, **space.describe(widths), "convcut": space.family.variant == CONVCUT,
            "input_shape": list(space.info.input_shape), "num_classes": space.info.num_classes,
            "data": asdict(space.info), "weights": base.name + ".pt",
            **space.own_architecture(), **(extra or {})}
    weights = base.parent / (base.name + ".pt")
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    blob = buffer.getvalue()
    atomic_write(weights, lambda tmp: Path(tmp).write_bytes(blob))
    # NAME.pt is these bytes, hashed as written (not read back: another export's, written there meanwhile, was)
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    json_path = base.parent / (base.name + ".json")
    atomic_write_json(json_path, meta)
    return json_path, weights


def stem(path: str | Path) -> Path:
    """NAME of NAME.json / NAME.pt / NAME.onnx: a dot inside NAME (resnet18-0.25) is part of it."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in NAMED_SUFFIXES else path


def _check_name(path: str | Path) -> None:
    """An export's NAME names files (NAME.json, NAME.pt), not a folder: an empty one, one that ends in a slash
    or an existing folder is refused before anything is written."""
    text = str(path)
    name = stem(text).name
    if not text.strip() or text.endswith(("/", os.sep)) or name in ("", ".", "..") or Path(text).is_dir():
        raise NeuralscaleError(f"export name {text!r} must name its files (NAME gives NAME.json and NAME.pt), "
                               "not a folder")
    above = next((p for p in stem(text).parents if p.exists()), None)  # the nearest folder that is there
    if above is not None and not above.is_dir():  # (not "cannot write afile/m.json: File exists")
        raise NeuralscaleError(f"export name {text!r}: {above} is a file, not a folder to write the export in")


def named(path: str | Path, suffix: str) -> Path:
    base = stem(path)
    return base.parent / (base.name + suffix)


def read_meta(path: str | Path) -> dict:
    given, path = Path(path), named(path, ".json")
    if not path.exists() and given.is_dir():  # (not "DIR.json does not exist")
        if RunDir(given).record.is_file() or is_descent_dir(given):  # (its record.json is no model file)
            run = RunDir(given).record.is_file()
            raise NeuralscaleError(f"{given} is a run's folder, not a model file: export it first (neuralscale export "
                                   "RUN --out NAME, ns.export_run), then load NAME.json" if run else f"{given} is a descent's folder, which keeps no network: train one of its "
                                   "laws (train --method neuralscale --from DIR), export that run, then load its "
                                   "NAME.json")
        inside = sorted(p.name for p in given.glob("*.json") if _exported(p))[:3]
        raise NeuralscaleError(f"{given} is a folder; name the model file in it (the .json export wrote"
                               + (f", such as {given / inside[0]})" if inside else ")"))
    if not path.exists():
        raise NeuralscaleError(f"{path} does not exist")
    try:
        meta = json.loads(read_text(path))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # (a number of 5000 digits, nesting too deep)
        raise NeuralscaleError(f"{path} is not a neuralscale model file ({str(e)[:200] or 'nested too deeply'})") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NeuralscaleError(f"{path} is not a neuralscale model file (no format: {FORMAT})")
    meta["_path"] = str(path)
    return meta


def load_model(path: str | Path, device: str = "cpu", data_dir: str | None = None,
               space: WidthSpace | None = None, pixels: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild a saved model: its width space at its widths, with its weights.  No dataset is needed; a
    space of your own (`neuralscale.space(model, example_input)`) is passed as `space`.

    A model exported from a run takes images as they are (`Pixels`: float pixel values 0-255, N x C x H x W at
    meta["input_shape"]; class names in meta["classes"]); `pixels=False` (or a model saved without its
    normalisation) gives the bare network, which takes normalised inputs."""
    _check_arguments("load_model", {"path": path}, space)
    check_flags("load_model", {"pixels": pixels})
    path = expand(path)
    device = resolve_device(device)  # one this machine has, or one clear line (before any reading)
    meta = read_meta(path)
    missing = [k for k in ("model", "dataset", "widths", "weights") if k not in meta]
    if missing:
        raise NeuralscaleError(f"{meta['_path']} is damaged: it has no {', '.join(missing)}")
    if not isinstance(meta["weights"], str) or not meta["weights"].strip():
        raise NeuralscaleError(f"{meta['_path']} is damaged: its weights must name the weights file, got "
                               f"{meta['weights']!r}")
    _check_tables(meta)
    sp = record_space(meta, data_dir, space, where_now='space=ns.space("file:PATH.py:NAME", DATASET)')
    if space is not None:
        _check_given(meta, sp)
    _check_fields(meta, sp, own_space=space is None)
    meta.setdefault("params_share", sp.params(meta["widths"]) / sp.params(sp.base_widths))
    meta.setdefault("macs_share", sp.macs(meta["widths"]) / sp.macs(sp.base_widths))
    meta.setdefault("input_shape", list(sp.info.input_shape))
    meta.setdefault("num_classes", sp.info.num_classes)
    model = sp.build(meta["widths"])
    weights = Path(meta["_path"]).parent / meta["weights"]
    try:  # the bytes checked are the bytes loaded (the file read once: another put in its place between is not)
        blob = weights.read_bytes()
    except FileNotFoundError:
        raise NeuralscaleError(f"{weights} is missing") from None
    except OSError as e:
        raise NeuralscaleError(f"cannot read {weights}: {e.strerror or e}") from None
    _check_weights_digest(meta, weights, blob)
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:
        raise NeuralscaleError(f"{weights} does not fit {meta['model']} at these widths ({unloadable(e)})") from None
    pre = meta.get("preprocessing")
    if pixels and isinstance(pre, dict):
        try:
            model = Pixels(model, pre["mean"], pre["std"])
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise NeuralscaleError(f"{meta['_path']} is damaged: its preprocessing has no per-channel mean and std") from None
    return model.to(device).eval(), meta


def _check_weights_digest(meta: dict, weights: Path, blob: bytes) -> None:
    """The weights beside a model file (`blob`, read from `weights`) are those it was saved with, where it says
    their SHA-256 (files saved before say none): another export's NAME.pt of the same widths put in their place
    loaded silently."""
    said = meta.get("weights_sha256")
    if said is None:
        return
    if not (isinstance(said, str) and len(said) == 64 and all(c in "0123456789abcdef" for c in said)):
        raise NeuralscaleError(f"{meta['_path']} is damaged: its weights_sha256 must be 64 hex digits, got "
                               f"{str(said)[:70]!r}")
    if hashlib.sha256(blob).hexdigest() != said:
        raise NeuralscaleError(f"{weights} is not the weights {Path(meta['_path']).name} was saved with (another "
                               "file, or changed since); export the run again, or, for weights of your own at these "
                               f"widths, delete \"weights_sha256\" from {Path(meta['_path']).name}")


def _exported(path: Path) -> bool:
    """Whether `path` is a model file that an export wrote (its format said)."""
    try:
        meta = json.loads(read_text(path))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def _check_tables(meta: dict) -> None:
    """The fields read before the space is known, of their kind where present: a damaged `layers` was a TypeError,
    and a `preprocessing` that is no table gave the bare network, fed pixels the file says it takes."""
    for field, ok, must in (("layers", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                             "a list of layer names"),
                            ("preprocessing", lambda v: isinstance(v, dict), "a table (input, mean, std)")):
        if field in meta and not ok(meta[field]):
            raise NeuralscaleError(f"{meta['_path']} is damaged: its {field} must be {must}, got "
                                   f"{str(meta[field])[:60]!r}")


def _check_given(meta: dict, sp: WidthSpace) -> None:
    """A space the caller gave for images of another kind than the file's (its classes or channels, where the file
    says them well-formed): the space does not fit, and the file is not damaged."""
    n, shape, pre = meta.get("num_classes"), meta.get("input_shape"), meta.get("preprocessing")
    classes = n if isinstance(n, int) and not isinstance(n, bool) else None
    channels = (shape[0] if isinstance(shape, list) and shape and isinstance(shape[0], int) else
                len(pre["mean"]) if isinstance(pre, dict) and isinstance(pre.get("mean"), list) else None)
    info = sp.info
    if classes in (None, info.num_classes) and channels in (None, info.in_channels):
        return

    def said(classes: int | None, channels: int | None) -> str:
        return ", ".join(([f"{classes} class{'es' * (classes != 1)}"] if classes is not None else [])
                         + ([f"{channels} input channel{'s' * (channels != 1)}"] if channels is not None else []))
    raise NeuralscaleError(f"the space given ({sp.name} for {info.name}: {said(info.num_classes, info.in_channels)}) "
                           f"does not fit {meta['_path']}, saved for {meta.get('dataset')!s:.40} "
                           f"({said(classes, channels)}); make the space for that data")


def _check_fields(meta: dict, sp: WidthSpace, own_space: bool = True) -> None:
    """The fields a loaded model's users read (and Pixels applies) as its space says they must be: a damaged or
    hand-edited file is one NeuralscaleError naming the field, not a size mismatch at the first forward pass.
    A space of the caller's own (`own_space` False) may take other image sizes than the file was saved for: its
    input_shape is then the file's business."""
    info = sp.info

    def check(field: str, value, ok: bool, must: str) -> None:
        if not ok:
            raise NeuralscaleError(f"{meta['_path']} is damaged: its {field} must be {must}, got {value!r}")

    def numbers(v, positive: bool) -> bool:
        return (isinstance(v, list) and len(v) == info.in_channels
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
                and (not positive or all(x > 0 for x in v)))

    if own_space and "input_shape" in meta:
        check("input_shape", meta["input_shape"], meta["input_shape"] == list(info.input_shape),
              f"{list(info.input_shape)} ({sp.name}'s)")
    if "num_classes" in meta:
        n = meta["num_classes"]
        check("num_classes", n, n == info.num_classes and not isinstance(n, bool), f"{info.num_classes} ({sp.name}'s)")
    if meta.get("classes") is not None:  # an empty list: a run that had no class names
        c = meta["classes"]
        check("classes", c, isinstance(c, list) and all(isinstance(x, str) for x in c)
              and len(c) in (0, info.num_classes), f"a list of {info.num_classes} names")
    pre = meta.get("preprocessing")
    if isinstance(pre, dict):
        check("preprocessing.mean", pre.get("mean"), numbers(pre.get("mean"), False),
              f"{info.in_channels} finite numbers (one per channel)")
        check("preprocessing.std", pre.get("std"), numbers(pre.get("std"), True),
              f"{info.in_channels} finite positive numbers (one per channel)")


def from_run(run_dir: str | Path, path: str | Path, *, force: bool = False, onnx: bool = False,
             space: WidthSpace | None = None, model: str | None = None,
             clear: Path | None = None, writing: bool = False) -> tuple[Path, Path]:
    """Export a finished run's network (its record and final checkpoint) as PATH.json + PATH.pt, the JSON saying
    that no NAME.onnx holds it (export_run says so once one does). `model`: the network as named now, where the
    record names its model file where it lay (zoo.record_space's `named`). `clear`: a file removed once every
    check has passed, before the pair is written (an earlier export's NAME.onnx); `writing`: the JSON says that
    NAME.onnx is being written (`onnx_writing`), where no file of the user's own is there.

    Nothing is overwritten and nothing is written into a run or descent directory unless `force`;
    with `onnx`, the ONNX extra must be installed, checked before anything is written.
    """
    run_dir = Path(run_dir)
    _check_name(path)
    for suffix in (".json", ".pt") + ((".onnx",) if onnx else ()):
        check_new_file(named(path, suffix), force)
    if onnx:
        _need_onnx()
    record = read_record(run_dir)
    if record is None:
        if not Path(run_dir).exists():
            raise NeuralscaleError(f"{run_dir} does not exist")
        runs = StoreDir(run_dir).runs  # a sweep's store: its runs are runs/<id>
        raise NeuralscaleError(f"{run_dir} holds no run record" + (f"; it is a sweep's store: export one of its runs, "
                               f"{runs}/<id>" if runs.is_dir() else "; it is a descent's folder, which keeps no "
                               "network: train one of its laws (train --method neuralscale --from DIR), then export "
                               "that run" if is_descent_dir(run_dir) else ""))
    if record["status"] != "finished":
        raise NeuralscaleError(f"run {run_dir.name} has not finished (status {record['status']})")
    ckpt = RunDir(run_dir).checkpoint
    if not ckpt.exists():
        raise NeuralscaleError(f"{ckpt} is missing; the run's weights were not kept")
    if model is not None and model_identity(model_spelling(model)[0]) != model_identity(record_model(record)[0]):
        raise NeuralscaleError(f"{model!r} is not the network of run {run_dir.name} ({record['model']})")
    sp = record_space(record, None, space, model)
    model = sp.build(record["widths"])
    state = read_run_weights(ckpt, record["id"], record)  # the run's own, its last: another's is refused
    _check_weights_fit(state, model.state_dict(), ckpt, run_dir, record, sp if space is not None else None)
    model.load_state_dict(state)
    s = record.get("summary", {})
    norm, classes = _normalization(record, run_dir)
    # what the files would say, checked as loading them checks it, before they are written (a hand-edited record's
    # classes or normalisation wrote a pair that its own check then refused, left behind)
    _check_fields({"classes": classes, "preprocessing": {k: norm.get(k) for k in ("mean", "std")},
                   "_path": RunDir(run_dir).record}, sp)
    if clear is not None:  # its JSON first: stopped between, none says an ONNX file holds its network
        named(path, ".json").unlink(missing_ok=True)
        clear.unlink(missing_ok=True)
        log.info("export: removed %s (the earlier export's network)", clear)
    return save_model(path, model, sp, record["widths"],
                      extra={"run": record["id"], "method": record.get("label"), "dataset": record["dataset"],
                             # the weights are the last epoch's (the run keeps no other): their test accuracy is
                             # final_test_acc, not the best-validation epoch's
                             "weights_epoch": len(record.get("history") or []) or record["config"].get("epochs"),
                             "best_val_epoch": s.get("best_val_epoch"),
                             "test_acc_at_best_val": s.get("test_acc_at_best_val"),
                             "final_test_acc": s.get("final_test_acc"), "classes": classes,
                             "preprocessing": {"input": pixels_text(record["dataset"]), "mean": norm["mean"], "std": norm["std"],
                                               "in_onnx": False},  # True once NAME.onnx holds it
                             **({"onnx_writing": True} if writing else {})})  # (until then: NAME.onnx is ours)


def _check_weights_fit(state: dict, mine: dict, ckpt: Path, run_dir: Path, record: dict,
                       given: WidthSpace | None) -> None:
    """A run's checkpoint that does not fit the network built for it, said by what differs: a space given of
    another network (other tensors), or for other data (other classes or input channels), else a checkpoint of
    other widths than the record's (a masked baseline's)."""
    if set(state) == set(mine) and all(state[k].shape == v.shape for k, v in mine.items()):
        return
    if given is not None and set(state) != set(mine):
        raise NeuralscaleError(f"{ckpt} does not fit the space given ({given.name}): it is not the network run "
                               f"{run_dir.name} was trained as ({record['model']})")
    trained = record.get("input") if isinstance(record.get("input"), dict) else {}
    if given is not None and any(trained.get(k) not in (None, getattr(given.info, k))
                                 for k in ("num_classes", "in_channels")):
        raise NeuralscaleError(f"the space given ({given.name} for {given.info.name}: {given.info.num_classes} "
                               f"classes, {given.info.in_channels} input channels) does not fit run {run_dir.name}, "
                               f"trained on {record.get('dataset')} ({trained.get('num_classes')} classes, "
                               f"{trained.get('in_channels')} input channels); make the space for that data")
    raise NeuralscaleError(f"{ckpt} is not a network of the recorded widths (a masked baseline cannot be exported "
                           "as a smaller model)")


def _normalization(record: dict, run_dir: Path) -> tuple[dict, list[str]]:
    """The run's input normalisation and class names: from its record, or (a run recorded before records kept
    them) from its data, read again."""
    norm = record.get("normalization")
    if isinstance(norm, dict) and all(isinstance(norm.get(k), list) for k in ("mean", "std")):
        return norm, list(record.get("classes") or [])
    from .data.augment import channel_stats
    from .runs import RunSpec, load_run_splits
    try:
        splits = load_run_splits(RunSpec.from_dict(record["spec"]))
    except NeuralscaleError as e:
        raise NeuralscaleError(f"run {run_dir.name} was recorded before runs kept their input normalisation, and "
                               f"its data cannot be read to compute it ({e})") from None
    mean, std = channel_stats(splits.train[0])
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}, list(splits.classes)


def export_run(run_dir: str | Path, path: str | Path, *, onnx: bool = False, force: bool = False,
               space: WidthSpace | None = None, model: str | None = None) -> dict:
    """A finished run as PATH.json + PATH.pt (and PATH.onnx, checked against onnxruntime where installed).
    A run of a space of your own needs that space (`space`). `model`: a file's network as you name it now
    (`file:nets.py:Net`), where the run's record names the file where it lay (a study moved with its file)."""
    _check_arguments("export_run", {"run_dir": run_dir, "path": path}, space)
    run_dir, path = expand(run_dir), expand(path)
    check_flags("export_run", {"onnx": onnx, "force": force})
    if model is not None and not isinstance(model, str):
        raise NeuralscaleError(f"export_run: model must be a name (such as 'file:nets.py:Net'), not "
                               f"{type(model).__name__}")
    with exclusive_name(stem(path), lambda pid: f"{stem(path)} is being exported by another neuralscale command "
                        f"(pid {pid}); wait for it to finish, or export to another name"):
        for suffix in NAMED_SUFFIXES:  # what an export killed while writing left
            clear_temps(named(path, suffix))
        return _export(run_dir, path, onnx, force, space, model)


def _export(run_dir, path, onnx: bool, force: bool, space: WidthSpace | None, model: str | None) -> dict:
    """export_run under the lock of its NAME: two exports to one NAME at once would pair one's JSON with the
    other's weights, or each remove what the other wrote."""
    # an earlier export's NAME.onnx, beside this one's files, is another network: removed before they are written
    # (a file of the user's own is left until --onnx's is written and checked in its place), and the JSON says
    # in_onnx only once this network's is there: an export stopped anywhere leaves no other network's ONNX under a
    # JSON that says it holds it
    stale = named(path, ".onnx")
    stale = stale if force and stale.is_file() and _wrote_onnx(named(path, ".json")) else None
    mine = stale is None and named(path, ".onnx").is_file()  # the user's own: never said to be this export's
    json_path, weights = from_run(run_dir, path, force=force, onnx=onnx, space=space, model=model, clear=stale,
                                  writing=onnx and not mine)
    model, meta = load_model(json_path, space=space)
    result = {"json": str(json_path), "weights": str(weights),
              **{k: meta[k] for k in ("model", "dataset", "layers", "widths", "params", "macs", "params_share",
                                      "macs_share")},
              **{k: meta.get(k) for k in ("weights_epoch", "final_test_acc", "best_val_epoch")}}
    if onnx:
        try:
            result.update(to_onnx(model, tuple(meta["input_shape"]), named(json_path, ".onnx")))
        except BaseException:  # none written: the NAME.onnx there (a user's own) is not this export's
            _said_onnx(json_path, False)
            raise
        _said_onnx(json_path, True)
    return result


def _said_onnx(json_path: Path, written: bool) -> None:
    """The export's JSON says whether NAME.onnx holds its network (`in_onnx`), no longer that it is being written."""
    saved = {k: v for k, v in json.loads(read_text(json_path)).items() if k != "onnx_writing"}
    atomic_write_json(json_path, {**saved, "preprocessing": {**saved["preprocessing"], "in_onnx": written}})


def _wrote_onnx(json_path: Path) -> bool:
    """Whether `json_path` is an export that wrote NAME.onnx beside it."""
    try:
        meta = json.loads(read_text(json_path))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT and (
        meta.get("onnx_writing") is True  # (stopped after its NAME.onnx was put in place, before it said so)
        or isinstance(meta.get("preprocessing"), dict) and meta["preprocessing"].get("in_onnx") is True)


def _check_arguments(call: str, paths: dict, space) -> None:
    """Arguments of the wrong type as one NeuralscaleError (the CLI's line), not a TypeError deep inside."""
    check_paths(call, paths, optional=False)
    if space is not None and not isinstance(space, WidthSpace):
        raise NeuralscaleError(f"{call}: space must be a WidthSpace (ns.space(...)), not {type(space).__name__}")


def _need_onnx() -> None:
    if optional_import("onnx") is None:
        raise NeuralscaleError("ONNX export needs the optional extra: pip install 'neuralscale[onnx]'")


def to_onnx(model: nn.Module, input_shape, path: str | Path, check: bool = True) -> dict:
    """Export to ONNX; with onnxruntime installed, compare its outputs with PyTorch's on random inputs."""
    _need_onnx()
    path = Path(path)
    model = model.cpu().eval()
    x = torch.randn(2, *input_shape)
    result = {"onnx": str(path), "checked": False}

    def write(tmp: str) -> None:  # (an atomic write's temporary file: unique, named as every killed write's is)
        import warnings
        with warnings.catch_warnings():  # the TorchScript exporter (no onnxscript needed) warns that it is legacy
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (x,), tmp, input_names=["images"], output_names=["logits"],
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
        if check:  # the file checked before it is put in place: one whose outputs differ is not left there
            result.update(_check_onnx(model, input_shape, Path(tmp)))
    atomic_write(path, write)
    return result


def _check_onnx(model: nn.Module, input_shape, path: Path) -> dict:
    """With onnxruntime installed, the ONNX file's outputs compared with the model's on random inputs."""
    ort = optional_import("onnxruntime")
    if ort is None:
        return {}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, *input_shape)
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(["logits"], {"images": x.numpy()})[0]
    diff = float(abs(ref - got).max())
    if diff > 1e-3 * max(1.0, float(abs(ref).max())):
        raise NeuralscaleError(f"the ONNX model's outputs differ from PyTorch's by up to {diff:.3g}")
    return {"checked": True, "max_abs_diff": diff}
