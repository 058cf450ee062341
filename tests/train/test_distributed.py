"""torchrun with 2 CPU processes (gloo): sharded scoring equals one process bit
for bit, a killed run resumes to the same scores, DDP trains a student."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

import plada_codec  # noqa: E402
from plada_train import StudentRecipe, consume, create_model  # noqa: E402
from plada_train.data import open_reference  # noqa: E402
from plada_train.distributed import Context  # noqa: E402
from plada_train.preprocess import preprocess_for  # noqa: E402
from plada_train.scoring import Scores, score_reference  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")

COMMON = ["--image-size", "16", "--device", "cpu", "--quiet"]


def torchrun(*args, env=None, nproc=2):
    """``torchrun --standalone --nproc_per_node=2 -m plada_train ARGS`` on CPU."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "plada_train", *map(str, args)]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    environ.pop("PLADA_TRAIN_FAIL_AFTER", None) if env is None else None
    # A hang guard only (a run takes 10-180 s on a loaded 2-core machine): the outputs are what is tested.
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=1800)


def test_sharded_scores_equal_one_process_and_a_killed_run_resumes(digits, tmp_path):
    target, reference, _ = digits
    torch.manual_seed(0)
    teacher = create_model("smallcnn", 10, 1).eval()  # any fixed weights will do
    weights = tmp_path / "teacher.pth"
    torch.save(teacher.state_dict(), weights)
    out = tmp_path / "multi"
    args = ["produce", "--target", target, "--reference", reference, "--out", out, "--teacher-checkpoint", weights,
            "--teacher-epochs", "0", "--shard-size", "64", "--score-batch-size", "32", "--keep", "0.2", *COMMON]
    killed = torchrun(*args, env={"PLADA_TRAIN_FAIL_AFTER": "shards:2"})  # each rank stops after 2 shards
    assert killed.returncode != 0
    parts = out / "scores.npz.parts"
    assert len(list(parts.glob("shard-*.npz"))) == 4 and not (out / "scores.npz").exists()
    assert not list(parts.glob("*.tmp*"))  # only complete shards are on disk
    resumed = torchrun(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming: 4 of 15 shards already scored" in resumed.stdout
    multi = Scores.load(out / "scores.npz")
    assert not parts.exists()

    refs = open_reference(reference)  # one process, same shard and batch composition
    refs.set_preprocess(preprocess_for(None, "smallcnn", 1, 16))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = score_reference(teacher, refs, Context(), shard_size=64, batch_size=32)
    finally:
        torch.set_num_threads(threads)
    for name in ("labels", "energy", "entropy", "neg_max_softmax"):
        a, b = getattr(multi, name), getattr(single, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name  # bit for bit
    payload = plada_codec.decode((out / "payload-low-0.2.plada").read_bytes())
    assert payload.metadata["teacher"]["pretrained"] is True and len(payload) == 179


def test_ddp_student_trains_and_resumes(digits, tmp_path):
    target, reference, truth = digits
    digits_at = np.flatnonzero(truth >= 0)  # a payload with the true labels of the pool's digits
    data = plada_codec.encode(digits_at, truth[digits_at], n_classes=10,
                              reference=open_reference(reference).reference_set())
    payload = tmp_path / "true.plada"
    payload.write_bytes(data)
    checkpoints, student = tmp_path / "ckpt", tmp_path / "student.pt"
    args = ["consume", payload, "--reference", reference, "--test", target, "--steps", "60", "--batch-size", "32",
            "--rotate", "0", "--scale", "0", "--translate", "0.04", "--checkpoint-every", "20",
            "--checkpoint-dir", checkpoints, "--save", student, *COMMON]
    killed = torchrun(*args, env={"PLADA_TRAIN_FAIL_AFTER": "steps:40"})
    assert killed.returncode != 0 and not student.exists()
    resumed = torchrun(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming student at step 40 of 60" in resumed.stdout
    ddp_accuracy = float(resumed.stdout.strip().splitlines()[-1].split('"accuracy": ')[1].rstrip("}"))
    one = consume(str(payload), reference, test=target, image_size=16, device="cpu",
                  student_recipe=StudentRecipe(steps=60, batch_size=32, checkpoint_every=0, rotate=0, scale=0,
                                                translate=0.04))
    # 497 correctly labelled digits, 60 steps: far above chance (0.1) on 1 process (0.84 measured)
    # and on 2, whose per-rank batches of 16 add up to the same global batch
    assert ddp_accuracy > 0.7 and one.accuracy > 0.7 and abs(ddp_accuracy - one.accuracy) < 0.15
    saved = create_model("smallcnn", 10, 1)
    saved.load_state_dict(torch.load(student, weights_only=True))  # rank 0 wrote a whole student


def test_ctrl_c_under_torchrun_is_one_line_from_rank_0(digits, tmp_path):
    """The terminal's SIGINT reaches torchrun and every rank: the ranks say it
    once (rank 0), no rank prints a KeyboardInterrupt traceback. What torchrun's
    own agent prints about the signal is the launcher's, not plada-train's."""
    import signal
    import threading

    target, reference, _ = digits
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
               "plada_train", "produce", "--target", target, "--reference", reference, "--out", str(tmp_path / "out"),
               "--teacher-steps", "1000000", "--teacher-batch-size", "64", *COMMON]
    # SIGINT at its default in the child: a shell's background job (a CI runner) starts with it ignored.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    guard = threading.Timer(1800, lambda: os.killpg(proc.pid, signal.SIGKILL))  # a hang guard only
    guard.start()
    try:
        for line in proc.stdout:
            if line.startswith("training the teacher"):
                os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
                break
        _, err = proc.communicate()
    finally:
        guard.cancel()
    ours = [line for line in err.splitlines() if line.startswith("plada-train")]
    assert len(ours) == 1 and "interrupted while training the teacher" in ours[0], err[-3000:]
    assert "run the same command again to resume" in ours[0]
    assert "KeyboardInterrupt" not in err and "plada_train/" not in err, err[-3000:]


def test_ranks_of_one_machine_share_one_listing_of_a_folder_and_of_tar_shards(digits, tmp_path):
    # Local rank 0 lists the set into a temporary file that the other rank maps; the two
    # layouts of the same images score alike, and no listing file is left behind.
    import io
    import tarfile

    from PIL import Image

    target, reference, _ = digits
    with np.load(reference) as data:
        images = data["x"][:300]
    folder, shards = tmp_path / "folder", tmp_path / "shards"
    shards.mkdir()
    for i, image in enumerate(images):
        path = folder / f"c{i // 100}" / f"img{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0] if image.ndim == 3 else image).save(path)
    for shard in range(3):  # the same images, the same order: shard c0.tar holds c0/img0000 ...
        with tarfile.open(shards / f"c{shard}.tar", "w") as tar:
            for i in range(shard * 100, shard * 100 + 100):
                data = (folder / f"c{shard}" / f"img{i:04d}.png").read_bytes()
                info = tarfile.TarInfo(f"img{i:04d}.png")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    torch.manual_seed(0)
    weights = tmp_path / "teacher.pth"
    torch.save(create_model("smallcnn", 10, 1).eval().state_dict(), weights)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    scores = {}
    for name, ref in (("folder", folder), ("tar", shards)):
        out = tmp_path / f"out-{name}"
        run = torchrun("produce", "--target", target, "--reference", ref, "--out", out, "--teacher-checkpoint",
                       weights, "--teacher-epochs", "0", "--shard-size", "64", "--score-batch-size", "32",
                       "--keep", "0.2", *COMMON, env={"TMPDIR": str(scratch)})
        assert run.returncode == 0, run.stderr[-2000:]
        scores[name] = Scores.load(out / "scores.npz")
        assert len(scores[name].labels) == 300
        assert not list(scratch.glob("plada-listing-*"))  # the shared listing is removed once both ranks hold it
    for field in ("labels", "energy"):
        assert getattr(scores["folder"], field).tobytes() == getattr(scores["tar"], field).tobytes(), field
