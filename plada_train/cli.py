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

import plada_codec.cli as codec_cli
from plada_codec.cli import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_USAGE

from .baselines import DEFAULT_METHODS, FAMILIES, RANKED_MODES
from .errors import DataError
from .recipes import STUDENT_OPTIONS, TEACHER_OPTIONS, StudentRecipe, TeacherRecipe, recipe_with_options
from .requests import ConsumeRequest, ProduceRequest, add_options, from_args
from .selection import ORDERS

__all__ = ["main", "build_parser", "exit_status", "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_INTERRUPTED",
           "EXIT_BROKEN_PIPE"]

T, S = TeacherRecipe(), StudentRecipe()


def _teacher_recipe(args) -> TeacherRecipe:
    return recipe_with_options(T, TEACHER_OPTIONS, vars(args))  # the map produce(teacher_steps=...) uses


def _student_recipe(args) -> StudentRecipe:
    return recipe_with_options(S, STUDENT_OPTIONS, vars(args))  # the map consume(steps=...) uses


# -- the commands: each reads its arguments and runs ---------------------------------------------


def _cmd_produce(args) -> int:
    from .server import produce

    produce(request=from_args(ProduceRequest, args))
    return EXIT_OK


def _cmd_consume(args) -> int:
    from .client import consume

    result = consume(request=from_args(ConsumeRequest, args))
    if result is not None:
        if result.result_path is not None:
            print(f"wrote {result.result_path} (plada-train report reads it)")
        print(json.dumps(result.summary()))
    return EXIT_OK


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), rates=tuple(args.rates), device=args.device, quick=args.quick,
             progress=not args.quiet)
    return EXIT_OK


def _cmd_baselines(args) -> int:
    from .baselines import run_baselines

    student = StudentRecipe() if args.steps is None else StudentRecipe().with_(steps=args.steps)
    teacher = TeacherRecipe() if args.teacher_epochs is None else TeacherRecipe().with_(epochs=args.teacher_epochs)
    report = run_baselines(args.target, args.reference, args.out, keeps=tuple(args.keep),
                           per_class=tuple(args.per_class), sparsities=tuple(args.sparsity), seeds=tuple(args.seeds),
                           student_recipe=student, teacher_recipe=teacher, mode=args.mode, device=args.device,
                           progress=not args.quiet, methods=args.methods and tuple(args.methods),
                           image_size=args.image_size, catalog=args.catalog, quick=args.quick)
    print(report.table())
    print(f"wrote {report.path}, {Path(args.out) / 'baselines.md'} and {Path(args.out) / 'baselines.png'}")
    return EXIT_OK


def _cmd_report(args) -> int:
    from .report import report, table

    rows = report(args.out, plot=not args.no_plot)
    print(json.dumps(rows) if args.json else table(rows))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = codec_cli.OneLineParser(prog="plada-train", description=__doc__.split("\n")[0],
                                     epilog="Run under torchrun for several processes.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=codec_cli.OneLineParser)

    p = sub.add_parser("produce", help="server: teacher, scores, payloads")
    add_options(p, ProduceRequest)
    p.set_defaults(func=_cmd_produce)

    p = sub.add_parser("consume", help="client: decode, train a student, evaluate")
    add_options(p, ConsumeRequest)
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
                                   "without the Safety-Net, and with a random selection; JPEG-30 + Zstd-19 "
                                   "random and K-Center subsets; an INT8 linear probe; the pruned INT8 teacher) "
                                   "and write OUT/baselines.json (resumable, point by point), baselines.md and "
                                   "baselines.png.")
    p.add_argument("--target", default=ProduceRequest.target)
    p.add_argument("--reference", default=ProduceRequest.reference)
    p.add_argument("--out", default="baselines-output")
    p.add_argument("--keep", type=float, nargs="+", default=[0.01, 0.05], help="PLADA keep rates")
    p.add_argument("--mode", default="low", choices=RANKED_MODES,
                   help="the PLADA family's order: " + "; ".join(f"{name}: {ORDERS[name].summary}"
                                                                  for name in RANKED_MODES)
                        + " (the plada-random family draws at random)")
    p.add_argument("--per-class", type=int, nargs="+", default=[1, 5, 20],
                   help="images per class of the pixel baselines")
    p.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.9],
                   help="pruned fractions of the teacher's weights (the unpruned INT8 teacher is always included)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="student seeds (mean and spread)")
    p.add_argument("--steps", type=int, help="student steps (default: the student recipe's)")
    p.add_argument("--teacher-epochs", type=float, help="teacher epochs (default: the teacher recipe's)")
    p.add_argument("--methods", nargs="+", choices=list(FAMILIES), metavar="FAMILY",
                   help=f"the families to run: {', '.join(FAMILIES)} (default: {' '.join(DEFAULT_METHODS)})")
    p.add_argument("--quick", action="store_true",
                   help="one point a family: the first --keep (no Safety-Net variant), --per-class, --sparsity "
                        "and --seeds")
    p.add_argument("--image-size", type=int, help="resize every image to this side (default: the target's size)")
    p.add_argument("--catalog", help="catalog (plada catalog build) of the reference set; --reference then names "
                                     "the local copy in any layout")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_baselines)

    p = sub.add_parser("report", help="per payload in a produce folder: bytes, keep, kept images per class, accuracy")
    p.add_argument("out", help="the --out folder of plada-train produce")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-plot", action="store_true", help="do not write OUT/report.png")
    p.set_defaults(func=_cmd_report)
    return parser


# -- one exception-to-exit map, one way to run a command ------------------------------------------

# plada's map (plada_codec.cli.EXIT_MAP: the codec's errors) and the training wing's DataError after
# it: the two CLIs cannot disagree on an exit status. An output path is a usage error (2), as in plada.
EXIT_MAP = codec_cli.EXIT_MAP + (((DataError, ValueError), EXIT_USAGE, False),)


def exit_status(exc: BaseException) -> tuple[int, str] | None:
    """(exit status, one-line message) for an error the CLI reports, or None for one it does not know."""
    return codec_cli.known_error(exc, EXIT_MAP, _os_error)


def _os_error(exc: OSError) -> str:
    message = codec_cli.os_error_message(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        message += " (free some space, then run the same command again: finished work is kept)"
    return message


def _interrupted(args) -> str:
    from .workdir import current_stage

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


def main(argv: list[str] | None = None) -> int:
    """Run ``plada-train``; returns the exit status (the table in the module docstring)."""
    rank = os.environ.get("RANK", "0")
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    # Under torchrun every rank gets the SIGINT: rank 0 says it once, the others stop quietly;
    # an error is each rank's own line.
    return codec_cli.run_command("plada-train", build_parser, argv, exit_map=EXIT_MAP,
                                 tag=f" [rank {rank}]" if several else "", os_error=_os_error,
                                 interrupted=lambda args: _interrupted(args) if rank == "0" else None,
                                 output_is_a_result=False)  # progress and results also go to files


if __name__ == "__main__":
    sys.exit(main())
