"""Scoring the reference set: per image a pseudo-label and three uncertainty
scores, in fixed-size contiguous shards.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .distributed import Context, fail_point
from .errors import DataError
from .selection import SCORE_NAMES, label_dtype
from .train import autocast
from .workdir import Provenance


@dataclass
class Scores:
    """Per reference image: hard label (argmax) and three uncertainty scores,
    each lower = more confident: energy ``-T*logsumexp(z/T)``, entropy of
    ``softmax(z/T)``, and negative max-softmax. ``provenance`` records what
    produced them (saved with the arrays).

    Labels are kept in the smallest integer type that holds the largest one
    (uint8 up to label 255, uint16 up to 65,535, else int32; see
    ``selection.label_dtype``), in memory, in scoring shards and on disk:
    2 bytes an image at ImageNet-21K's 21,841 classes, not 8. Files written
    before this (int64 labels) load the same and are narrowed on load."""

    labels: np.ndarray
    energy: np.ndarray
    entropy: np.ndarray
    neg_max_softmax: np.ndarray
    temperature: float = 1.0
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = narrow_labels(self.labels)

    def get(self, name: str) -> np.ndarray:
        table = {"energy": self.energy, "entropy": self.entropy, "msp": self.neg_max_softmax}
        if name not in table:
            raise DataError(f"score must be one of {', '.join(table)}, got {name!r}")
        return table[name]

    def save(self, path: str | Path) -> None:
        """Atomically write an .npz: the four arrays, the temperature and the
        provenance as a JSON string."""
        path = Path(path)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, labels=self.labels, energy=self.energy, entropy=self.entropy,
                 neg_max_softmax=self.neg_max_softmax, temperature=np.float64(self.temperature),
                 provenance=np.array(json.dumps(self.provenance, sort_keys=True)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> Scores:
        try:
            with np.load(path, allow_pickle=False) as d:
                provenance = json.loads(str(d["provenance"])) if "provenance" in d else {}
                return cls(d["labels"], d["energy"], d["entropy"], d["neg_max_softmax"], float(d["temperature"]),
                           provenance)
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
    """(labels int64, energy, entropy, -max softmax) in float32."""
    z = logits.float() / temperature
    log_probs = torch.log_softmax(z, dim=1)
    probs = log_probs.exp()
    energy = -temperature * torch.logsumexp(z, dim=1)
    entropy = -(probs * log_probs).sum(1)
    return (logits.float().argmax(1).numpy().astype(np.int64), energy.numpy(), entropy.numpy(),
            (-probs.max(1).values).numpy())


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
    index, labels, energy, entropy, msp = (np.concatenate(p) for p in zip(*parts))
    if not np.array_equal(index, np.arange(start, stop)):
        raise RuntimeError(f"reference items {start}..{stop} came back out of order")
    labels = labels.astype(label_dtype(n_classes))  # shards too: one type per run, by the class count
    return {"labels": labels, "energy": energy, "entropy": entropy, "neg_max_softmax": msp}


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
        parts.append((index.numpy(), *score_logits(logits.float().cpu(), temperature)))
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
    provenance = dict(provenance or {}, scorer={"shard_size": shard_size, "batch_size": batch_size})
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
                what = differences(found, provenance) or ["shard or batch size"]
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
    arrays = {k: [] for k in ("labels", "energy", "entropy", "neg_max_softmax")}
    for s in range(n_shards):
        if parts is not None:
            with np.load(parts / f"shard-{s:08d}.npz") as d:
                shard = {k: d[k] for k in arrays}
        else:
            shard = results[s]
        for k in arrays:
            arrays[k].append(shard[k])
    merged = {k: np.concatenate(v) if v else np.empty(0, np.uint8 if k == "labels" else np.float32)
              for k, v in arrays.items()}
    return Scores(merged["labels"], merged["energy"], merged["entropy"], merged["neg_max_softmax"],
                  temperature, provenance)


def remove_parts(parts_dir: str | Path) -> None:
    shutil.rmtree(parts_dir, ignore_errors=True)


__all__ = ["Scores", "score_logits", "score_reference", "iter_inputs", "differences", "remove_parts", "SCORE_NAMES"]
