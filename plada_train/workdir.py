"""What lives in ``produce --out``, and how a run keeps it sound.

- ``.lock``: one produce a folder at a time (an ``flock``; a second run stops at once);
- temporaries of an atomic write a killed run left behind, swept by the next run;
- ``teacher.pt`` + ``teacher.json`` (the request it answers) and ``scores.npz``, each
  reused only when its :class:`Provenance` shows no difference from the new request;
- the payloads, named by :func:`payload_name`;
- the stage a run is in, for the CLI's one line on Ctrl-C.

numpy and the standard library only: the CLI imports it before torch.
"""

from __future__ import annotations

import errno
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plada_codec import NotARegularFileError, write_atomically

from .errors import DataError

__all__ = ["LOCK_NAME", "TEACHER_FILE", "TEACHER_INFO", "Provenance", "payload_name", "current_stage", "stage",
           "lock_out", "unlock", "remove_stale_temporaries", "write", "write_bytes", "corrupt", "load_scores",
           "saved_teacher_request", "without_target_spec", "TEACHER_FIX"]

LOCK_NAME = ".lock"
TEACHER_FILE, TEACHER_INFO = "teacher.pt", "teacher.json"
TEACHER_FIX = "delete it (and teacher.json beside it) to train the teacher again"


# -- provenance: what made the teacher and the scores ------------------------------------------

# The keys a scores file is matched on (its other keys, e.g. the scorer's batch size or the
# target's path, are information only).
MATCHED_KEYS = ("teacher", "temperature", "outlier_weight", "reference", "preprocess", "plada_version")


@dataclass(frozen=True)
class Provenance:
    """What made a scores file: the teacher (its request, and its weights once they exist),
    the scoring temperature and the inputs. Saved scores are reused only when
    :meth:`differences` finds none; a record's layout (:meth:`to_record`) is the one
    scores files have always had, so older files keep matching."""

    teacher: Any  # the teacher request (a dict): model, checkpoint, recipe, target digests, reference, preprocess
    temperature: Any
    outlier_weight: Any
    reference: Any
    preprocess: Any
    plada_version: Any
    weights_sha256: str | None = field(default=None)  # the teacher's weights: known once it is trained or read

    def to_record(self) -> dict:
        teacher = {**self.teacher, "weights_sha256": self.weights_sha256} if isinstance(self.teacher, dict) \
            else self.teacher
        return {"teacher": teacher, "temperature": self.temperature, "outlier_weight": self.outlier_weight,
                "reference": self.reference, "preprocess": self.preprocess, "plada_version": self.plada_version}

    @classmethod
    def from_record(cls, record: dict) -> Provenance:
        """The provenance a scores file carries. A target path recorded by older
        writers inside the teacher's request is dropped: a path names a file, not its content."""
        record = record if isinstance(record, dict) else {}
        teacher = without_target_spec(record.get("teacher"))
        weights = None
        if isinstance(teacher, dict):
            teacher = dict(teacher)
            weights = teacher.pop("weights_sha256", None)
        return cls(teacher, record.get("temperature"), record.get("outlier_weight"), record.get("reference"),
                   record.get("preprocess"), record.get("plada_version"), weights)

    def differences(self, other: Provenance, *, weights: bool = True) -> list[str]:
        """What *self* (found) has that *other* (requested) does not, one phrase a key:
        ``teacher.recipe {...} (requested {...})``. Without *weights*, the teacher's
        weights are not compared (before the teacher exists)."""
        found, wanted = self.to_record(), other.to_record()
        if not weights:
            for record in (found, wanted):
                if isinstance(record["teacher"], dict):
                    record["teacher"] = {**record["teacher"], "weights_sha256": None}
        out = []
        for key in MATCHED_KEYS:
            a, b = found.get(key), wanted.get(key)
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict):
                out += [f"{key}.{k} {a.get(k)!r} (requested {b.get(k)!r})" for k in sorted(set(a) | set(b))
                        if a.get(k) != b.get(k)]
            else:
                out.append(f"{key} {a!r} (requested {b!r})")
        return out

    def refuse_other(self, found: Provenance, path: Path, *, weights: bool = True) -> None:
        """A DataError naming *path* when the *found* provenance differs from this request."""
        diff = found.differences(self, weights=weights)
        if diff:
            raise DataError(f"{path} was made for another request ({'; '.join(diff[:3])}"
                            f"{'; ...' if len(diff) > 3 else ''}): pass --rescore to score again, or --scores NEW.npz")


def without_target_spec(record: Any) -> Any:
    """*record* (a teacher request) without ``target.spec``: records written before the
    target's path became information only had it there, and it is never compared."""
    if not isinstance(record, dict) or not isinstance(record.get("target"), dict):
        return record
    return {**record, "target": {k: v for k, v in record["target"].items() if k != "spec"}}


def saved_teacher_request(info: Path) -> tuple[dict, dict] | None:
    """The sidecar of a saved teacher (all of it, and the request it answers), or None.

    A teacher.json that cannot be read is refused in one line naming the file, never
    trained over silently: training may have taken hours, and a file that produce wrote
    atomically and now fails to load says the disk or another program changed it."""
    if not info.exists():
        return None
    try:
        saved = json.loads(info.read_text(encoding="utf-8"))
        return saved, saved["request"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise corrupt(info, exc, TEACHER_FIX) from None


def load_scores(scores_cls, path: Path):
    """Saved scores, or one line naming the file and the fix for a file that cannot be read."""
    try:
        return scores_cls.load(path)
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise corrupt(path, exc, "pass --rescore to score again (or delete it)") from None


def corrupt(path: Path, exc: BaseException, fix: str) -> DataError:
    return DataError(f"{path} is unreadable ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}): {fix}")


# -- payload names ----------------------------------------------------------------------------


def payload_name(mode: str, safety_share: float, keep: float, spread: float = 1.0, score: str = "energy") -> str:
    """``payload-<mode>[-<score>][-safety][-spread<s>]-<keep>.plada``, e.g. ``payload-low-0.05.plada``,
    ``payload-ends-margin-0.05.plada`` or ``payload-low-safety-spread2-0.05.plada`` (*spread*: the
    effective one, as recorded; *score* named unless it is the default, energy), so that two
    selections never share a file."""
    ranked_by = f"-{score}" if score != "energy" else ""
    safety = "-safety" if safety_share else ""
    thinned = f"-spread{short_number(spread)}" if spread != 1 else ""
    return f"payload-{mode}{ranked_by}{safety}{thinned}-{short_number(keep)}.plada"


def short_number(value: float) -> str:
    """``2`` for 2.0, ``0.05``; the shortest round-trip form when ``:g`` would lose digits."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


# -- writing ------------------------------------------------------------------------------------


def write(path, writer: Callable) -> None:
    """``write_atomically``, with an OSError raised by *writer* (a full disk) naming *path*."""
    try:
        write_atomically(path, writer)
    except OSError as exc:
        if exc.filename is not None or isinstance(exc, NotARegularFileError):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(path)) from None


def write_bytes(path: Path, data: bytes) -> None:
    write(path, lambda fh: fh.write(data))


# -- the stage a run is in (for the CLI's one line on Ctrl-C) -----------------------------------

_STAGE: dict[str, str | None] = {"now": None}


def stage(text: str | None) -> None:
    _STAGE["now"] = text


def current_stage() -> str | None:
    """What the running (or the last) ``produce`` / ``consume`` was doing; None before any.
    Not cleared when a run ends, so the CLI can say where an interrupted one stopped."""
    return _STAGE["now"]


# -- one produce a folder -------------------------------------------------------------------------


def lock_out(out: Path) -> tuple[int | None, str | None]:
    """An exclusive ``flock`` on ``OUT/.lock`` (holding this process's id), or why not.

    The kernel releases it when the process ends, however it ends, so a killed
    run leaves nothing to clean up and the same command resumes. The file is
    left in place: removing it would let a third run lock a new file while the
    second still holds the old one."""
    import fcntl

    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        return None, (f"{out} is in use by another plada-train produce (process {holder}): wait for it to end, "
                      "or give another --out")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd, None


def unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


# Temporary files of an atomic write: plada_codec's (.NAME.PID.tmp) and, from before it, NAME.tmpPID.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$|^(?P<old>teacher\.pt|teacher\.json|payload-.+\.plada)"
                        r"\.tmp(?P<oldpid>\d+)$")


def remove_stale_temporaries(out: Path) -> None:
    """Remove what a killed writer left in *out* (it holds the lock, so no other produce
    writes there; a file whose process still runs, e.g. a ``consume --save``, is kept)."""
    for path in out.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match["pid"] or match["oldpid"])
        if pid != os.getpid() and not _process_runs(pid):
            path.unlink(missing_ok=True)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True
