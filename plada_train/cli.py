"""``plada-train``: produce payloads (server), consume them (client), run the demo, compare baselines.

Data specs: ``builtin:mnist`` (target: MNIST train/test), ``builtin:pool`` (the
90k miniature reference pool), ``builtin:pool-far`` (the pool without MNIST: a
far-OOD reference), an ``.npz`` file (target: x_train, y_train, x_test, y_test;
reference: x), a folder of images (reference, in canonical order; target:
ImageFolder class sub-folders) or WebDataset-style tar shards (reference).
Run under ``torchrun --nproc_per_node=G`` to use G processes (gloo on CPU,
NCCL on GPU).

Exit status, the same table as ``plada``'s:

====  ==========================================================================
0     success
1     the payload is invalid, exceeds a limit or does not match the reference set
2     bad usage or input: an option, a missing or unreadable input file, data
      that cannot work, a reference set that cannot be hashed or changed since
      its manifest, an output that cannot be written (a full disk included),
      an ``--out`` another produce holds
130   interrupted (Ctrl-C): rerun the same command to resume
141   the reader of standard output went away (as after SIGPIPE)
====  ==========================================================================

Every error is one line on standard error: ``plada-train <command>: error: ...``
(under torchrun, each rank's own line; rank 0 alone reports an interruption).
Arguments are parsed and checked before torch is imported or any data is
opened, so ``--help`` and a usage error answer at once.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

import plada_codec

from .errors import DataError
from .pipeline import ConsumeRequest, ProduceRequest
from .recipes import STUDENT_OPTIONS, TEACHER_OPTIONS, StudentRecipe, TeacherRecipe, recipe_with_options

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

P, C = ProduceRequest(), ConsumeRequest()
T, S = TeacherRecipe(), StudentRecipe()


def _read_class_names(path: str | None) -> tuple[str, ...] | None:
    if path is None:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"class names file {path} not found: give a text file, one name a line") from None
    except UnicodeDecodeError:
        raise DataError(f"class names file {path} is not UTF-8 text: save it as UTF-8") from None
    return tuple(line for line in lines if line.strip())


def _teacher_recipe(args) -> TeacherRecipe:
    return recipe_with_options(T, TEACHER_OPTIONS, vars(args))  # the map produce(teacher_steps=...) uses


def _student_recipe(args) -> StudentRecipe:
    return recipe_with_options(S, STUDENT_OPTIONS, vars(args))  # the map consume(steps=...) uses


def _cmd_produce(args) -> int:
    from .pipeline import produce

    request = ProduceRequest(
        target=args.target, reference=args.reference, out=args.out, keep=tuple(args.keep), mode=args.mode,
        score=args.score, temperature=args.temperature, safety_share=args.safety_share, alpha=args.alpha,
        spread=args.spread,
        seed=args.seed, n_classes=args.n_classes, class_names=_read_class_names(args.class_names),
        task_name=args.task_name, teacher=args.teacher, teacher_checkpoint=args.teacher_checkpoint,
        teacher_recipe=_teacher_recipe(args), image_size=args.image_size, channels=args.channels,
        scores=args.scores, rescore=args.rescore, batch_size=args.score_batch_size, shard_size=args.shard_size,
        workers=args.workers, manifest=args.manifest, rehash=args.rehash, catalog=args.catalog, id_rule=args.id_rule,
        device=args.device, progress=not args.quiet)
    produce(request=request)
    return 0


def _cmd_consume(args) -> int:
    from .pipeline import consume

    request = ConsumeRequest(
        payload=args.payload, reference=args.reference, test=args.test, student=args.student,
        student_recipe=_student_recipe(args), image_size=args.image_size, channels=args.channels, save=args.save,
        checkpoint_dir=args.checkpoint_dir, workers=args.workers, manifest=args.manifest, rehash=args.rehash,
        catalog=args.catalog, id_rule=args.id_rule, max_missing=args.max_missing,
        device=args.device, progress=not args.quiet)
    result = consume(request=request)
    if result is not None:
        print(json.dumps(result.summary()))
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), rates=tuple(args.rates), device=args.device, quick=args.quick,
             progress=not args.quiet)
    return 0


def _cmd_baselines(args) -> int:
    from .baselines import run_baselines
    from .recipes import StudentRecipe, TeacherRecipe

    student = StudentRecipe() if args.steps is None else StudentRecipe().with_(steps=args.steps)
    teacher = TeacherRecipe() if args.teacher_epochs is None else TeacherRecipe().with_(epochs=args.teacher_epochs)
    report = run_baselines(args.target, args.reference, args.out, keeps=tuple(args.keep),
                           per_class=tuple(args.per_class), sparsities=tuple(args.sparsity), seeds=tuple(args.seeds),
                           student_recipe=student, teacher_recipe=teacher, mode=args.mode, device=args.device,
                           progress=not args.quiet)
    print(report.table())
    print(f"wrote {report.path}, {Path(args.out) / 'baselines.md'} and {Path(args.out) / 'baselines.png'}")
    return 0


def _cmd_report(args) -> int:
    from .report import report, table

    rows = report(args.out, plot=not args.no_plot)
    if args.json:
        print(json.dumps(rows))
    else:
        print(table(rows))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=P.device, help="auto (this rank's GPU when present), cpu or cuda")
    parser.add_argument("--image-size", type=int, help="input side in pixels (default: the model's data config)")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="1 = grayscale, 3 = RGB (default: the target's)")
    parser.add_argument("--workers", type=int, default=P.workers, help="DataLoader worker processes")
    parser.add_argument("--manifest",
                        help="manifest from `plada ref-hash --manifest-out`: verify the reference cheaply")
    parser.add_argument("--rehash", action="store_true", help="re-read every reference file to fingerprint it")
    parser.add_argument("--catalog", help="catalog (plada catalog build) the payload's indices refer to; --reference "
                                          "then names the local copy in any layout (folder, tar shards, parquet)")
    parser.add_argument("--id", dest="id_rule", default=P.id_rule,
                        help="id rule the catalog was built with: stem (default), key or column:NAME")
    parser.add_argument("--seed", type=int, default=T.seed, help="training seed (and random selection's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plada-train", description=__doc__.split("\n")[0],
                                     epilog="Run under torchrun for several processes.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("produce", help="server: teacher, scores, payloads")
    _common(p)
    p.add_argument("--target", default=P.target)
    p.add_argument("--reference", default=P.reference)
    p.add_argument("--out", required=True, help="folder for teacher.pt, scores.npz and the payloads")
    p.add_argument("--keep", type=float, nargs="+", default=list(P.keep), help="keep rates, fractions in (0, 1]")
    p.add_argument("--mode", choices=["low", "high", "random"], default=P.mode)
    p.add_argument("--score", choices=["energy", "entropy", "msp"], default=P.score)
    p.add_argument("--temperature", type=float, default=P.temperature)
    p.add_argument("--safety-share", type=float, default=P.safety_share, help="Safety-Net share s (0 = off)")
    p.add_argument("--alpha", type=float, default=P.alpha, help="Safety-Net exponent α")
    p.add_argument("--spread", type=float, default=P.spread,
                   help="keep the budget spread evenly over the best SPREAD x budget images "
                        "instead of the most typical ones (1 = the paper's rule)")
    p.add_argument("--teacher", default=P.teacher, help="smallcnn, smallcnn_w32 or a timm model name")
    p.add_argument("--teacher-checkpoint", help="local state-dict file (e.g. pretrained timm weights) to start from")
    p.add_argument("--teacher-epochs", type=float, help=f"default {T.epochs}; 0 = use the checkpoint as it is")
    p.add_argument("--teacher-steps", type=int, help="optimiser steps instead of epochs")
    p.add_argument("--teacher-lr", type=float, help=f"default {T.lr}")
    p.add_argument("--teacher-batch-size", type=int, help=f"default {T.batch_size}")
    p.add_argument("--teacher-weight-decay", type=float, help=f"default {T.weight_decay}")
    p.add_argument("--outlier-weight", type=float,
                   help="outlier exposure on the reference set while training the teacher "
                        f"(default {T.outlier_weight}; 0 = off)")
    p.add_argument("--n-classes", type=int, help="default: largest target label + 1")
    p.add_argument("--class-names", help="text file, one name a line, in label order")
    p.add_argument("--task-name")
    p.add_argument("--scores", help="scores file to reuse or write (default OUT/scores.npz)")
    p.add_argument("--rescore", action="store_true", help="score again, replacing saved scores")
    p.add_argument("--score-batch-size", type=int, default=P.batch_size)
    p.add_argument("--shard-size", type=int, default=P.shard_size, help="items per scoring shard (the resume unit)")
    p.set_defaults(func=_cmd_produce)

    p = sub.add_parser("consume", help="client: decode, train a student, evaluate")
    _common(p)
    p.add_argument("payload")
    p.add_argument("--reference", default=C.reference)
    p.add_argument("--test", help="target spec with a test split, e.g. builtin:mnist")
    p.add_argument("--max-missing", type=float, default=C.max_missing, metavar="FRACTION",
                   help="with --catalog: train without the selected images the local copy lacks, up to this "
                        "fraction of them (default %(default)s); above it, stop with exit 2")
    p.add_argument("--student", default=C.student, help="smallcnn, smallcnn_w32 or a timm model name (paper: resnet18)")
    p.add_argument("--steps", type=int, help=f"optimiser steps (default {S.steps})")
    p.add_argument("--epochs", type=float, help="passes over the virtual data set instead of --steps")
    p.add_argument("--lr", type=float, help=f"default {S.lr}")
    p.add_argument("--batch-size", type=int, help=f"global batch (default {S.batch_size})")
    p.add_argument("--weight-decay", type=float, help=f"default {S.weight_decay}")
    p.add_argument("--warmup-steps", type=int, help=f"default {S.warmup_steps}")
    p.add_argument("--translate", type=float, help=f"augmentation: shift, fraction of the side (default {S.translate})")
    p.add_argument("--rotate", type=float, help=f"augmentation: degrees (default {S.rotate})")
    p.add_argument("--scale", type=float, help=f"augmentation: scale range ± (default {S.scale})")
    p.add_argument("--checkpoint-dir", help="write training state here and resume from it")
    p.add_argument("--checkpoint-every", type=int, help=f"steps between checkpoints (default {S.checkpoint_every})")
    p.add_argument("--save", help="write the student's state dict here")
    p.set_defaults(func=_cmd_consume)

    p = sub.add_parser("demo", help="the whole pipeline on the built-in miniature")
    p.add_argument("--out", default="demo-output")
    p.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.05, 0.10])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a tiny version (seconds; for tests)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("baselines", help="bandwidth against accuracy: PLADA next to pixel and weight baselines",
                       description="Train a student from each payload (PLADA at several keep rates, with and "
                                   "without the Safety-Net; JPEG-30 + Zstd-19 random and K-Center subsets; an INT8 "
                                   "linear probe; the pruned INT8 teacher) and write OUT/baselines.json (resumable, "
                                   "point by point), baselines.md and baselines.png.")
    p.add_argument("--target", default=P.target)
    p.add_argument("--reference", default=P.reference)
    p.add_argument("--out", default="baselines-output")
    p.add_argument("--keep", type=float, nargs="+", default=[0.01, 0.05], help="PLADA keep rates")
    p.add_argument("--mode", default="low", choices=["low", "high"],
                   help="low-energy (in-domain) or high-energy (far out of domain) PLADA selection")
    p.add_argument("--per-class", type=int, nargs="+", default=[1, 5, 20],
                   help="images per class of the pixel baselines")
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.9],
                   help="pruned fractions of the teacher's weights (the unpruned INT8 teacher is always included)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="student seeds (mean and spread)")
    p.add_argument("--steps", type=int, help="student steps (default: the student recipe's)")
    p.add_argument("--teacher-epochs", type=float, help="teacher epochs (default: the teacher recipe's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_baselines)

    p = sub.add_parser("report", help="per payload in a produce folder: bytes, keep, kept images per class, accuracy")
    p.add_argument("out", help="the --out folder of plada-train produce")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-plot", action="store_true", help="do not write OUT/report.png")
    p.set_defaults(func=_cmd_report)
    return parser


def _interrupted(args) -> str:
    from .pipeline import current_stage

    stage = current_stage()
    where = f"while {stage}" if stage else "before any work started"
    if args.command == "produce":
        resume = f"run the same command again to resume (finished work in {args.out} is kept)"
    elif args.command == "consume" and args.checkpoint_dir:
        resume = f"run the same command again to resume from the last checkpoint in {args.checkpoint_dir}"
    elif args.command == "consume":
        resume = "run the same command again to start over (with --checkpoint-dir a rerun resumes)"
    else:
        resume = "run the same command again"
    return f"interrupted {where}; {resume}"


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    message = f"{where}{exc.strerror or exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        message += " (free some space, then run the same command again: finished work is kept)"
    return message


def main(argv: list[str] | None = None) -> int:
    """Run ``plada-train``; returns the exit status (the table in the module docstring)."""
    args = build_parser().parse_args(argv)
    prefix = f"plada-train {args.command}"
    rank = os.environ.get("RANK", "0")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        prefix += f" [rank {rank}]"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # Under torchrun every rank gets the SIGINT: rank 0 says it once, the others stop quietly.
        if rank == "0":
            print(f"plada-train {args.command}: {_interrupted(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (plada_codec.EncodeError, plada_codec.ReferenceSetError) as exc:
        # the reference set (unhashable, stale manifest) or an output path, not a payload: as plada, 2
        print(f"{prefix}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except plada_codec.PayloadError as exc:  # before ValueError: some are ValueErrors too
        print(f"{prefix}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (DataError, ValueError) as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a file that cannot be read or written, a full disk
        print(f"{prefix}: error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
