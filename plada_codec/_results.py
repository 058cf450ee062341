"""What decoding and inspecting return: Payload, PayloadInfo, SectionInfo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._constants import FORMAT_MAJOR, FORMAT_MINOR


@dataclass(frozen=True, eq=False)
class Payload:
    """A decoded payload: k sorted distinct indices into the reference set
    and one label per index, plus what the payload says about itself."""

    indices: np.ndarray
    labels: np.ndarray
    n_ref: int
    n_classes: int
    fingerprint: bytes | None = None
    class_names: tuple[str, ...] | None = None
    task_name: str | None = None
    metadata: dict[str, Any] | None = None
    version: tuple[int, int] = (FORMAT_MAJOR, FORMAT_MINOR)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Payload):
            return NotImplemented
        return (
            np.array_equal(self.indices, other.indices)
            and np.array_equal(self.labels, other.labels)
            and (self.n_ref, self.n_classes, self.fingerprint, self.class_names)
            == (other.n_ref, other.n_classes, other.fingerprint, other.class_names)
            and (self.task_name, self.metadata) == (other.task_name, other.metadata)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the layout of the test vectors' ``.json`` files)."""
        return {
            "format_version": f"{self.version[0]}.{self.version[1]}",
            "n_ref": self.n_ref,
            "n_classes": self.n_classes,
            "count": len(self),
            "fingerprint": None if self.fingerprint is None else self.fingerprint.hex(),
            "indices": self.indices.tolist(),
            "labels": self.labels.tolist(),
            "class_names": None if self.class_names is None else list(self.class_names),
            "task_name": self.task_name,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class SectionInfo:
    """One section as framed on the wire (no body decoding)."""

    type: int
    name: str
    critical: bool
    codec: int
    codec_name: str
    compression: int
    compression_name: str
    raw_length: int
    stored_length: int
    offset: int
    understood: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PayloadInfo:
    """Header fields and section table of a payload, from :func:`inspect`."""

    version: tuple[int, int]
    n_ref: int
    n_classes: int
    count: int
    fingerprint: bytes | None
    total_length: int
    sections: tuple[SectionInfo, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": f"{self.version[0]}.{self.version[1]}",
            "n_ref": self.n_ref,
            "n_classes": self.n_classes,
            "count": self.count,
            "fingerprint": None if self.fingerprint is None else self.fingerprint.hex(),
            "total_length": self.total_length,
            "sections": [s.to_dict() for s in self.sections],
        }
