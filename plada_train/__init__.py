"""plada_train: the PLADA pipeline on torch + timm (server and client).

``produce(...)`` and ``consume(...)`` do what ``plada-train produce`` and
``plada-train consume`` do, with the same defaults (ProduceRequest,
ConsumeRequest, TeacherRecipe, StudentRecipe)."""

from .data import ImageSet, Miniature, load_folder, load_miniature, load_npz
from .distributed import Context, pick_device
from .engine import evaluate, seed_everything, train_classifier
from .errors import DataError
from .models import SmallCNN, create_model
from .pipeline import (
    Consumed,
    ConsumeRequest,
    Produced,
    ProduceRequest,
    consume,
    make_payload,
    produce,
    train_student,
    train_teacher,
)
from .recipes import StudentRecipe, TeacherRecipe, TrainRecipe
from .scoring import Scores, score_reference
from .selection import Selection, select

__all__ = [
    "ImageSet", "Miniature", "load_folder", "load_miniature", "load_npz",
    "Context", "pick_device", "evaluate", "seed_everything", "train_classifier", "DataError",
    "SmallCNN", "create_model",
    "ConsumeRequest", "Consumed", "ProduceRequest", "Produced", "consume", "make_payload", "produce",
    "train_student", "train_teacher",
    "StudentRecipe", "TeacherRecipe", "TrainRecipe", "Scores", "score_reference", "Selection", "select",
]
