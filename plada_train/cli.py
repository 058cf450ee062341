"""``plada-train``: produce payloads (server), consume them (client), run the demo.

Data specs: ``builtin:mnist`` (target: MNIST train/test), ``builtin:pool`` (the
90k miniature reference pool), ``builtin:pool-far`` (the pool without MNIST: a
far-OOD reference), a ``.npz`` file (target: x_train, y_train, x_test, y_test;
reference: x), or a folder of images (reference, canonical sorted order).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import plada_codec

from .data import ImageSet, load_folder, load_miniature, load_npz


def _target(spec: str) -> tuple[ImageSet, ImageSet | None]:
    if spec == "builtin:mnist":
        mini = load_miniature()
        return mini.target_train, mini.target_test
    path = Path(spec)
    if path.suffix == ".npz":
        train = load_npz(path, "x_train", "y_train")
        with np.load(path) as data:
            test = ImageSet(data["x_test"], data["y_test"], name=f"{path}:test") if "x_test" in data else None
        return train, test
    raise SystemExit(f"plada-train: unknown target {spec!r} (builtin:mnist or a .npz file)")


def _reference(spec: str, image_size: int | None, grayscale: bool) -> ImageSet:
    if spec in ("builtin:pool", "builtin:pool-far"):
        return load_miniature(include_in_domain=spec == "builtin:pool").pool
    path = Path(spec)
    if path.is_dir():
        return load_folder(path, image_size, grayscale)
    if path.suffix == ".npz":
        return load_npz(path, "x")
    raise SystemExit(f"plada-train: unknown reference {spec!r} (builtin:pool, a folder or a .npz file)")


def _cmd_produce(args) -> int:
    from .engine import Scores, TrainConfig, evaluate, pick_device, score_reference
    from .pipeline import produce_payload, train_teacher

    device = pick_device(args.device)
    train, test = _target(args.target)
    pool = _reference(args.reference, args.image_size, args.grayscale)
    reference = pool.reference_set()
    n_classes = int(train.labels.max()) + 1 if args.n_classes is None else args.n_classes
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores_path = Path(args.scores) if args.scores else out / "scores.npz"
    teacher_acc = None
    if scores_path.exists() and not args.rescore:
        scores = Scores.load(scores_path)
        if len(scores.labels) != len(pool):
            raise SystemExit(f"plada-train: {scores_path} scores {len(scores.labels)} images, the reference has {len(pool)}")
        print(f"reusing scores from {scores_path}")
    else:
        config = TrainConfig(epochs=args.teacher_epochs, outlier_weight=args.outlier_weight)
        teacher = train_teacher(train, n_classes, device, model_name=args.teacher, checkpoint=args.teacher_checkpoint,
                                config=config, outliers=pool, progress=True)
        if test is not None:
            teacher_acc = evaluate(teacher, test, device)
            print(f"teacher accuracy: {teacher_acc:.4f}")
        scores = score_reference(teacher, pool, device, temperature=args.temperature, progress=True)
        scores.save(scores_path)
    class_names = Path(args.class_names).read_text(encoding="utf-8").splitlines() if args.class_names else None
    for keep in args.keep:
        produced = produce_payload(scores, n_classes=n_classes, reference=reference, keep=keep, mode=args.mode,
                                   score=args.score, safety_share=args.safety_share, alpha=args.alpha,
                                   class_names=class_names, task_name=args.task_name,
                                   extra_metadata={"teacher": args.teacher, "teacher_accuracy": teacher_acc})
        path = out / f"payload-{args.mode}-{keep:g}.plada"
        path.write_bytes(produced.payload)
        print(f"{path}: {len(produced.selection.indices)} images, {len(produced.payload)} bytes")
    return 0


def _cmd_consume(args) -> int:
    from .engine import TrainConfig, evaluate, pick_device
    from .pipeline import consume_payload, train_student

    device = pick_device(args.device)
    pool = _reference(args.reference, args.image_size, args.grayscale)
    try:
        virtual, payload = consume_payload(Path(args.payload).read_bytes(), pool)
    except plada_codec.PayloadError as exc:
        print(f"plada-train consume: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"decoded {len(payload)} (index, label) pairs; training {args.student} on the virtual data set")
    student = train_student(virtual, payload.n_classes, device, model_name=args.student,
                            config=TrainConfig(epochs=args.epochs, min_steps=args.min_steps), progress=True)
    result = {"count": len(payload), "n_classes": payload.n_classes}
    if args.test:
        _, test = _target(args.test)
        result["accuracy"] = evaluate(student, test, device)
    if args.save:
        import torch

        torch.save(student.state_dict(), args.save)
    print(json.dumps(result))
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), rates=tuple(args.rates), teacher_epochs=args.teacher_epochs,
             student_steps=args.student_steps, device=args.device, quick=args.quick, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plada-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    common.add_argument("--image-size", type=int, help="resize folder images to this size")
    common.add_argument("--grayscale", action="store_true", help="read folder images as one channel")

    p = sub.add_parser("produce", parents=[common], help="server: teacher, scores, payloads")
    p.add_argument("--target", default="builtin:mnist")
    p.add_argument("--reference", default="builtin:pool")
    p.add_argument("--out", required=True)
    p.add_argument("--keep", type=float, nargs="+", default=[0.01])
    p.add_argument("--mode", choices=["low", "high", "random"], default="low")
    p.add_argument("--score", choices=["energy", "entropy", "msp"], default="energy")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--safety-share", type=float, default=0.0)
    p.add_argument("--alpha", type=float, default=0.0)
    p.add_argument("--teacher", default="smallcnn", help="smallcnn or a timm model name")
    p.add_argument("--teacher-checkpoint", help="local state-dict file for the teacher")
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--outlier-weight", type=float, default=0.5,
                   help="outlier exposure on the reference pool while training the teacher (0 = off)")
    p.add_argument("--n-classes", type=int)
    p.add_argument("--class-names", help="text file, one name a line")
    p.add_argument("--task-name")
    p.add_argument("--scores", help="scores file to reuse or write (default OUT/scores.npz)")
    p.add_argument("--rescore", action="store_true", help="ignore saved scores")
    p.set_defaults(func=_cmd_produce)

    p = sub.add_parser("consume", parents=[common], help="client: decode, train a student, evaluate")
    p.add_argument("payload")
    p.add_argument("--reference", default="builtin:pool")
    p.add_argument("--test", help="target spec with a test split, e.g. builtin:mnist")
    p.add_argument("--student", default="smallcnn", help="smallcnn or a timm model name (paper: resnet18)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--min-steps", type=int, default=400)
    p.add_argument("--save", help="write the student's state dict here")
    p.set_defaults(func=_cmd_consume)

    p = sub.add_parser("demo", help="the whole pipeline on the built-in miniature")
    p.add_argument("--out", default="demo-output")
    p.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.05, 0.10])
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--student-steps", type=int, default=600)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a small, fast version (for CI)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
