"""Scoring the reference set: per image a pseudo-label and every score of
:data:`~.uncertainty.SCORES`, in fixed-size contiguous shards.

Shard s covers items ``[s*S, min((s+1)*S, N))`` and is scored in batches of B
starting at its first item, whatever the number of processes, so a torchrun
job (shards dealt round-robin to ranks) writes exactly the numbers of a
single-process run. Each completed shard is written atomically (temporary file
+ ``os.replace``) by the rank that scored it; a run started again skips the
shards already on disk, and rank 0 merges them into one scores file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .distributed import Context, fail_point
from .errors import DataError
from .selection import label_dtype
from .train import autocast
from .uncertainty import SCORES, Logits
from .workdir import Provenance

# What a scoring shard and a scores file hold: the labels, then each score's array.
ARRAYS = ("labels", *(score.array for score in SCORES.values()))


class Scores:
    """Per reference image: its hard label (argmax) and its scores, one array a
    :data:`~.uncertainty.SCORES` entry, each lower = more confident.
    ``temperature`` is the scoring temperature; ``provenance`` records what
    produced them (saved with the arrays).

    The paper's three are positional (``Scores(labels, energy, entropy,
    neg_max_softmax)``); any other score is a keyword under its array name
    (``margin=...``). A file written before a score existed loads without it,
    and :meth:`get` then says to score again.

    Labels are kept in the smallest integer type that holds the largest one
    (uint8 up to label 255, uint16 up to 65,535, else int32; see
    ``selection.label_dtype``), in memory, in scoring shards and on disk:
    2 bytes an image at ImageNet-21K's 21,841 classes, not 8. Files written
    before this (int64 labels) load the same and are narrowed on load."""

    def __init__(self, labels: np.ndarray, energy: np.ndarray | None = None, entropy: np.ndarray | None = None,
                 neg_max_softmax: np.ndarray | None = None, temperature: float = 1.0, provenance: dict | None = None,
                 **arrays: np.ndarray) -> None:
        known = {score.array for score in SCORES.values()}
        unknown = sorted(set(arrays) - known)
        if unknown:
            raise ValueError(f"unknown score arrays {unknown}: the scores are {sorted(known)}")
        self.labels = narrow_labels(labels)
        given = {"energy": energy, "entropy": entropy, "neg_max_softmax": neg_max_softmax, **arrays}
        self.arrays = {name: np.asarray(values) for name, values in given.items() if values is not None}
        for name, values in self.arrays.items():
            if values.shape != self.labels.shape:
                raise ValueError(f"{name} holds {values.size} scores for {self.labels.size} labels")
        self.temperature = float(temperature)
        self.provenance = dict(provenance or {})

    energy = property(lambda self: self.arrays.get("energy"), doc="-T logsumexp(z/T) an image")
    entropy = property(lambda self: self.arrays.get("entropy"), doc="the entropy of softmax(z/T) an image")
    neg_max_softmax = property(lambda self: self.arrays.get("neg_max_softmax"), doc="-max softmax(z/T) an image")

    def get(self, name: str) -> np.ndarray:
        """The array of score *name* (a :data:`~.uncertainty.SCORES` key)."""
        if name not in SCORES:
            raise DataError(f"score must be one of {', '.join(SCORES)}, got {name!r}")
        array = SCORES[name].array
        if array not in self.arrays:
            raise DataError(f"these scores hold no {name} (they were made before plada computed it): "
                            "pass --rescore to score again")
        return self.arrays[array]

    def save(self, path: str | Path) -> None:
        """Atomically write an .npz: the labels, every score array, the temperature and the
        provenance as a JSON string."""
        path = Path(path)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, labels=self.labels, **self.arrays, temperature=np.float64(self.temperature),
                 provenance=np.array(json.dumps(self.provenance, sort_keys=True)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> Scores:
        try:
            with np.load(path, allow_pickle=False) as d:
                provenance = json.loads(str(d["provenance"])) if "provenance" in d else {}
                arrays = {score.array: d[score.array] for score in SCORES.values() if score.array in d}
                if not arrays:
                    raise KeyError("no score array")
                return cls(d["labels"], temperature=float(d["temperature"]), provenance=provenance, **arrays)
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path} is not a plada-train scores file ({exc}): delete it or pass --rescore") from None


def narrow_labels(labels: np.ndarray) -> np.ndarray:
    """*labels* in the smallest integer type holding them (never wider than given);
    anything but non-negative integers is returned unchanged."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        return labels
    dtype = label_dtype(int(labels.max()) + 1 if labels.size else 1)
    return labels.astype(dtype) if dtype.itemsize < labels.dtype.itemsize else labels


def score_logits(logits: torch.Tensor, temperature: float = 1.0) -> tuple[np.ndarray, ...]:
    """The paper's three scores of a batch: (labels int64, energy, entropy, -max softmax), float32."""
    arrays = score_batch(logits, temperature)
    return arrays["labels"].astype(np.int64), arrays["energy"], arrays["entropy"], arrays["neg_max_softmax"]


def score_batch(logits: torch.Tensor, temperature: float = 1.0) -> dict[str, np.ndarray]:
    """Every score of :data:`~.uncertainty.SCORES` for a batch of logits, by array name,
    float32, and ``labels``: the argmax (int64)."""
    view = Logits(logits, temperature)
    arrays = {score.array: score.formula(view).numpy() for score in SCORES.values()}
    return {"labels": view.raw.argmax(1).numpy().astype(np.int64), **arrays}


def differences(found: dict, wanted: dict) -> list[str]:
    """What differs between two provenance records (:meth:`.workdir.Provenance.differences`)."""
    return Provenance.from_record(found).differences(Provenance.from_record(wanted))


class _ShardBatches:
    """Batch sampler over several shards: batches of *batch_size* starting at each
    shard's first item (the last one of a shard shorter), shard after shard, so
    one DataLoader (one set of workers) serves every shard of a rank and the
    batches are those of any other number of processes. Lazy: nothing per item."""

    def __init__(self, shards: list[tuple[int, int]], batch_size: int) -> None:
        self.shards, self.batch_size = list(shards), batch_size

    def plan(self) -> Iterator[tuple[int, range]]:
        for number, (start, stop) in enumerate(self.shards):
            for lo in range(start, stop, self.batch_size):
                yield number, range(lo, min(stop, lo + self.batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        for _, batch in self.plan():
            yield list(batch)

    def __len__(self) -> int:
        return sum(-(-(stop - start) // self.batch_size) for start, stop in self.shards)


def iter_inputs(reference: Dataset, shards: list[tuple[int, int]], *, batch_size: int, workers: int = 0,
                device: torch.device | str = "cpu") -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """The scoring data path: per batch ``(shard number in *shards*, inputs on *device*, item indices)``.

    *shards* are ``(start, stop)`` item ranges, read in order in batches of
    *batch_size* from each one's start. One DataLoader serves them all, so its
    *workers* are forked once, not once per shard. For a plada data set the
    workers decode and resize to uint8 (:func:`plada_train.data.uint8_view`),
    batches travel as uint8 (pinned, non-blocking copies on CUDA) and are
    converted to float and normalised on *device*: the numbers of the float
    items, bit for bit on CPU, whatever the worker count. On CPU the inputs
    are written into one reused buffer: a batch's inputs are valid until the
    next batch is asked for (scoring uses each at once)."""
    from .data import uint8_view

    device = torch.device(device)
    sampler = _ShardBatches(shards, batch_size)
    if not len(sampler):
        return
    data, normalise = uint8_view(reference)
    loader = DataLoader(data, batch_sampler=sampler, num_workers=workers, pin_memory=device.type == "cuda")
    buffer = None
    for (number, expected), (x, index) in zip(sampler.plan(), loader):
        if len(index) != len(expected) or int(index[0]) != expected.start:
            raise RuntimeError(f"reference items {expected.start}..{expected.stop} came back out of order")
        x = x.to(device, non_blocking=True)
        if normalise is None:
            yield number, x, index
            continue
        out = None
        if device.type == "cpu" and x.dtype == torch.uint8:  # the CUDA caching allocator already reuses memory
            if buffer is None or buffer.shape[1:] != x.shape[1:] or len(buffer) < len(x):
                buffer = torch.empty(x.shape, dtype=torch.float32)
            out = buffer[:len(x)]
        yield number, normalise(x, out), index


def _finish_shard(parts: list, start: int, stop: int, n_classes: int) -> dict[str, np.ndarray]:
    index = np.concatenate([i for i, _ in parts])
    if not np.array_equal(index, np.arange(start, stop)):
        raise RuntimeError(f"reference items {start}..{stop} came back out of order")
    shard = {name: np.concatenate([arrays[name] for _, arrays in parts]) for name in parts[0][1]}
    shard["labels"] = shard["labels"].astype(label_dtype(n_classes))  # shards too: one type per run, by the class count
    return shard


@torch.no_grad()
def _score_shards(model: nn.Module, reference: Dataset, shards: list[tuple[int, int]], *, temperature: float,
                  batch_size: int, workers: int, device: torch.device,
                  bar=None) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield ``(position in *shards*, scored arrays)`` as each shard completes."""
    parts, current, n_classes = [], 0, 1
    for number, x, index in iter_inputs(reference, shards, batch_size=batch_size, workers=workers, device=device):
        if number != current:
            yield current, _finish_shard(parts, *shards[current], n_classes)
            parts, current = [], number
        with autocast(device):
            logits = model(x)
        n_classes = logits.shape[1]
        parts.append((index.numpy(), score_batch(logits.float().cpu(), temperature)))
        if bar is not None:
            bar.update(len(index))
    if parts:
        yield current, _finish_shard(parts, *shards[current], n_classes)


def score_reference(model: nn.Module, reference: Dataset, context: Context, *, temperature: float = 1.0,
                    batch_size: int = 256, shard_size: int = 8192, workers: int = 0,
                    parts_dir: str | Path | None = None, provenance: dict | None = None,
                    progress: bool = False) -> Scores | None:
    """Score every item of *reference* (items ``(tensor, index)``).

    One process: returns Scores. Under torchrun each rank scores its shards
    and rank 0 returns the merged Scores (other ranks return None); this needs
    *parts_dir*, a folder the ranks share. With *parts_dir*, completed shards
    persist there and a new call with the same *provenance* resumes; a
    different one is refused.

    Items of a plada data set are decoded and resized to uint8 in the
    DataLoader workers and normalised on the model's device
    (:func:`iter_inputs`); one set of workers serves all of this rank's
    shards. The progress counts images (rate and ETA), starting at the
    images of shards already on disk; it is off unless *progress*: a bar on
    a terminal, a line now and then elsewhere (:mod:`.progress`)."""
    from .progress import progress_bar

    if not temperature > 0:
        raise DataError(f"temperature must be positive, got {temperature}")
    if batch_size < 1 or shard_size < 1:
        raise DataError("batch size and shard size must be >= 1")
    n = len(reference)
    # The score list is part of the request, so shards an older plada wrote (fewer scores) are refused.
    provenance = dict(provenance or {}, scorer={"shard_size": shard_size, "batch_size": batch_size,
                                                "scores": list(ARRAYS[1:])})
    if context.distributed and parts_dir is None:
        raise DataError("scoring under torchrun needs a shared parts folder (parts_dir)")
    parts = Path(parts_dir) if parts_dir is not None else None
    if parts is not None:
        request_file = parts / "request.json"
        request = json.dumps(provenance, sort_keys=True)
        if context.is_main:
            parts.mkdir(parents=True, exist_ok=True)
            if request_file.exists() and request_file.read_text() != request:
                found = json.loads(request_file.read_text())
                what = differences(found, provenance) or _scorer_differences(found, provenance)
                raise DataError(f"{parts} holds partial scores of another request ({'; '.join(what)}): "
                                "delete it or pass --rescore")
            request_file.write_text(request)
        context.barrier()
    model.to(device := context.device).eval()
    n_shards = -(-n // shard_size)
    mine = range(context.rank, n_shards, context.world_size)
    if parts is not None and context.is_main:
        on_disk = len(list(parts.glob("shard-*.npz")))
        if on_disk:
            print(f"resuming: {on_disk} of {n_shards} shards already scored in {parts}", flush=True)
    bounds = {s: (s * shard_size, min(n, (s + 1) * shard_size)) for s in mine}
    paths = {s: parts / f"shard-{s:08d}.npz" if parts is not None else None for s in mine}
    todo = [s for s in mine if paths[s] is None or not paths[s].exists()]  # others: completed by an earlier run
    done_items = sum(stop - start for start, stop in bounds.values()) - sum(
        bounds[s][1] - bounds[s][0] for s in todo)
    # In images, not shards; a resumed run starts at the images already scored.
    bar = progress_bar(sum(stop - start for start, stop in bounds.values()), "scoring the reference set",
                       initial=done_items, enabled=progress and context.is_main,
                       bar={"unit": "img", "unit_scale": True})
    done_now = 0
    results: dict[int, dict] = {}
    for position, shard in _score_shards(model, reference, [bounds[s] for s in todo], temperature=temperature,
                                         batch_size=batch_size, workers=workers, device=device, bar=bar):
        s = todo[position]
        path = paths[s]
        if path is None:
            results[s] = shard
            continue
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **shard)
        os.replace(tmp, path)  # a shard file exists only once complete
        done_now += 1
        fail_point("shards", done_now)
    bar.close()
    context.barrier()
    if not context.is_main:
        return None
    arrays: dict[str, list] = {k: [] for k in ARRAYS}
    for s in range(n_shards):
        if parts is not None:
            path = parts / f"shard-{s:08d}.npz"
            with np.load(path) as d:
                missing = [k for k in arrays if k not in d]
                if missing:
                    raise DataError(f"{path} lacks {', '.join(missing)} (an older plada wrote it): "
                                    "delete the folder or pass --rescore")
                shard = {k: d[k] for k in arrays}
        else:
            shard = results[s]
        for k in arrays:
            arrays[k].append(shard[k])
    merged = {k: np.concatenate(v) if v else np.empty(0, np.uint8 if k == "labels" else np.float32)
              for k, v in arrays.items()}
    labels = merged.pop("labels")
    return Scores(labels, temperature=temperature, provenance=provenance, **merged)


def _scorer_differences(found: dict, wanted: dict) -> list[str]:
    """What differs in the scorer's record (shard size, batch size, the scores computed)."""
    a = found.get("scorer") if isinstance(found, dict) and isinstance(found.get("scorer"), dict) else {}
    b = wanted["scorer"]
    if "scores" not in a:
        return ["written by an older plada, which computed fewer scores"]
    return [f"scorer.{key} {a.get(key)!r} (requested {b.get(key)!r})" for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)] or ["the request"]


def remove_parts(parts_dir: str | Path) -> None:
    shutil.rmtree(parts_dir, ignore_errors=True)


__all__ = ["Scores", "score_logits", "score_batch", "score_reference", "iter_inputs", "differences", "remove_parts"]
