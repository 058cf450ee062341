"""plada_train: the PLADA pipeline on torch + timm (server and client)."""

from .data import ImageSet, Miniature, load_folder, load_miniature, load_npz
from .engine import Scores, TrainConfig, evaluate, pick_device, score_reference, seed_everything
from .models import SmallCNN, create_model
from .pipeline import Produced, consume_payload, produce_payload, train_student, train_teacher
from .selection import Selection, select

__all__ = [
    "ImageSet", "Miniature", "load_folder", "load_miniature", "load_npz",
    "Scores", "TrainConfig", "evaluate", "pick_device", "score_reference", "seed_everything",
    "SmallCNN", "create_model",
    "Produced", "consume_payload", "produce_payload", "train_student", "train_teacher",
    "Selection", "select",
]
