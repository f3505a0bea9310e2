"""The run folder under stress: a second writer, --overwrite on someone else's folder, a kill at every
write, a full disk, damaged files, and data that moved (issue 14, items 1-4, 12, 16 and 17)."""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from conftest import quick_config, run_cli
from test_cli import assert_clean_error
from test_distributed import _vaekit_command
from vaekit.errors import ConfigError, DataError, RunError, StorageError
from vaekit.training import lock as lock_module
from vaekit.training.commit import recover
from vaekit.training.lock import LOCK_NAME, holder_of, lock_run
from vaekit.training.run import load_model_and_data, open_run
from vaekit.training.trainer import resume, train

TIMING = ("seconds", "images_per_s", "elapsed_s")


def _curve(run: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock keys, which differ between any two runs."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def _same_weights(a: Path, b: Path) -> bool:
    left, right = load_file(str(a)), load_file(str(b))
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def _leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in run.rglob(".*") if p.is_file())


def _cli(capsys, *args: str) -> tuple[int, str]:
    """``vaekit ARGS`` in this process (no interpreter to start): its exit status and stderr."""
    from vaekit.cli.app import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _one_error(code: int, err: str, *fragments: str) -> None:
    """As test_cli.assert_clean_error, for a command run by :func:`_cli`."""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("vaekit: warning: ")]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("vaekit: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, digits_dataset) -> Path:
    """A 2-epoch run to copy (quick_config's); its best epoch is 2."""
    run = tmp_path_factory.mktemp("integrity") / "run"
    train(quick_config(epochs=2), digits_dataset, run)
    return run


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory, digits_dataset) -> Path:
    """The same config trained for 1 epoch: small_run as it was after its first epoch."""
    run = tmp_path_factory.mktemp("integrity") / "one"
    train(quick_config(epochs=1), digits_dataset, run)
    return run


def _copy(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


# -- 1. one writer per run folder ----------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from vaekit.training.lock import lock_run
    lock = lock_run(sys.argv[1], command="vaekit train --out R")
    print("locked", flush=True)
    if sys.argv[2] == "hold":
        time.sleep(60)
    else:
        import os
        os._exit(0)   # ends without releasing: the file stays, naming a process that is gone
""")


def _hold(folder: Path, mode: str = "hold") -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), mode], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = _hold(folder)
    try:
        with pytest.raises(RunError) as caught:
            lock_run(folder)
        message = str(caught.value)
        assert f"pid {holder.pid} on {socket.gethostname()}" in message and "vaekit train --out R" in message
        assert "since 20" in message and "\n" not in message
        assert holder_of(folder)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed (SIGKILL: no clean-up ran): its lock is taken over at once.
    assert (folder / LOCK_NAME).exists()
    with lock_run(folder) as taken:
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
        with lock_run(folder):     # the same process may lock again (report -> evaluate)
            pass
        assert taken.fd is not None and (folder / LOCK_NAME).exists()
    assert not (folder / LOCK_NAME).exists() and holder_of(folder) is None


def test_a_stale_lock_is_taken_over_without_fcntl_too(tmp_path, monkeypatch):
    """Where fcntl is missing (Windows) the lock file is made with O_EXCL and a holder whose pid is
    gone (on this host) is taken over; a living one is not."""
    monkeypatch.setattr(lock_module, "fcntl", None)
    folder = tmp_path / "run"
    folder.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "command": "x", "since": "t"}))
    with lock_run(folder):
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()
    alive = os.getppid()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": alive, "host": socket.gethostname(), "command": "y", "since": "t"}))
    with pytest.raises(RunError, match=f"in use by pid {alive}"):
        lock_run(folder)


def test_training_into_a_folder_in_use_is_refused_before_anything_is_touched(small_run, tmp_path, digits_dataset):
    """Issue 14's report: `train --out R` running, then `train --out R --overwrite` (it used to interleave)."""
    run = _copy(small_run, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    holder = _hold(run)
    try:
        with pytest.raises(RunError, match=f"in use by pid {holder.pid}"):
            train(quick_config(epochs=1, latent_dim=2), digits_dataset, run, overwrite=True)
        with pytest.raises(RunError, match=f"in use by pid {holder.pid}"):
            resume(run, lambda cfg: digits_dataset, epochs=3)
        from vaekit.evaluation.evaluate import evaluate

        with pytest.raises(RunError, match=f"in use by pid {holder.pid}"):
            evaluate(run, iw_samples=2, regularity=False)
    finally:
        holder.kill()
        holder.wait()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != LOCK_NAME} == before


def test_cli_commands_writing_into_a_run_in_use_say_who_holds_it(small_run, tmp_path, capsys):
    run = _copy(small_run, tmp_path)
    holder = _hold(run)
    try:
        code, err = _cli(capsys, "train", "--dataset", "digits", "--epochs", "1", "--out", str(run), "--overwrite")
        _one_error(code, err, f"in use by pid {holder.pid}", "vaekit train --out R")
        _one_error(*_cli(capsys, "sample", str(run), "--device", "cpu"), f"in use by pid {holder.pid}")
        # Written elsewhere, a figure needs no lock.
        code, err = _cli(capsys, "sample", str(run), "--device", "cpu", "-n", "4", "--out", str(tmp_path / "s.png"))
        assert code == 0 and (tmp_path / "s.png").is_file(), err
    finally:
        holder.kill()
        holder.wait()


# -- 2. --overwrite removes only what vaekit wrote ------------------------------------------------
def test_overwrite_refuses_a_folder_vaekit_did_not_write(tmp_path, digits_dataset):
    folder = tmp_path / "mine"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "model.ckpt").write_bytes(b"precious")
    (folder / "config.json").write_text('{"mine": true}')
    for overwrite in (False, True):
        with pytest.raises(RunError, match="no vaekit run.json, so vaekit did not write them"):
            train(quick_config(epochs=1), digits_dataset, folder, overwrite=overwrite)
    assert (folder / "checkpoints" / "model.ckpt").read_bytes() == b"precious"
    assert (folder / "config.json").read_text() == '{"mine": true}'
    # A run.json that is not vaekit's marker does not make a folder a run either.
    (folder / "run.json").write_text("[1, 2]")
    with pytest.raises(RunError, match="no vaekit run.json"):
        train(quick_config(epochs=1), digits_dataset, folder, overwrite=True)


def test_overwrite_removes_the_previous_runs_outputs_and_nothing_else(small_run, tmp_path, digits_dataset):
    run = _copy(small_run, tmp_path)
    (run / "figures").mkdir()
    (run / "figures" / "sample.png").write_bytes(b"old model")
    (run / "figures" / "my-notes.txt").write_text("keep")
    (run / "report.html").write_text("old")
    (run / "eval.json").write_text("{}")
    (run / "notes.md").write_text("keep")
    (run / "checkpoints" / ".last.safetensors.abc.tmp").write_bytes(b"half")
    train(quick_config(epochs=1, latent_dim=2), digits_dataset, run, overwrite=True)
    assert not (run / "figures" / "sample.png").exists() and not (run / "report.html").exists()
    assert not (run / "eval.json").exists() and not (run / "checkpoints" / ".last.safetensors.abc.tmp").exists()
    assert (run / "figures" / "my-notes.txt").read_text() == "keep" and (run / "notes.md").read_text() == "keep"
    assert [r["epoch"] for r in _curve(run)] == [1]
    assert open_run(run).config.latent_dim == 2


def test_a_folder_of_unrelated_files_takes_a_run_beside_them(tmp_path, digits_dataset):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    train(quick_config(epochs=1), digits_dataset, folder)
    assert (folder / "notes.txt").read_text() == "keep" and (folder / "run.json").is_file()


# -- 3. a kill at every write point, then resume ---------------------------------------------------
KILLED = 77


class _WritePoints:
    """Counts the moments a run's files change (before and after each os.replace, before, in the middle
    of and after each metrics append) and ends the process at one of them, as kill -9 would."""

    def __init__(self, kill_at: int | None):
        self.kill_at, self.count = kill_at, 0

    def point(self) -> bool:
        self.count += 1
        return self.count == self.kill_at

    def install(self, patch) -> None:
        import vaekit.training.commit as commit

        real_replace, real_append = os.replace, commit.append_line

        def replace(src, dst):
            if self.point():
                os._exit(KILLED)     # the temporary file stays behind
            real_replace(src, dst)
            if self.point():
                os._exit(KILLED)

        def append_line(path, line):
            if self.point():
                os._exit(KILLED)
            if self.point():         # cut short: half the line reaches the disk
                with open(path, "a", encoding="utf-8") as f:
                    f.write(line[: len(line) // 2])
                os._exit(KILLED)
            real_append(path, line)
            if self.point():
                os._exit(KILLED)

        patch(os, "replace", replace)
        patch(commit, "append_line", append_line)


def _tiny_data():
    """256 training images of 8x8 random bits (4 steps an epoch): the same in every process."""
    from conftest import unlabelled_dataset

    x = (np.random.default_rng(0).random((320, 1, 8, 8)) > 0.5).astype(np.float32)
    return unlabelled_dataset(x[:256], x[256:288], x[288:])


def _tiny_config(epochs: int):
    return quick_config(epochs=epochs, hidden=[16])


def _killed_training(run_dir: str, kill_at: int, epochs: int) -> None:
    """In a child process: train until the ``kill_at``-th write point, then die there."""
    torch.set_num_threads(1)
    data = _tiny_data()
    _WritePoints(kill_at).install(setattr)
    train(_tiny_config(epochs), data, run_dir)
    os._exit(0)


def _finish(run: Path, data, epochs: int) -> None:
    """What a user does after a crash: resume (or, killed before run.json existed, train again)."""
    try:
        resume(run, lambda cfg: data)
    except RunError as exc:
        if "already trained" in str(exc):       # the kill came after the last commit: nothing to train
            return
        assert "no run.json" in str(exc), exc   # killed before the run existed: train it again
        train(_tiny_config(epochs), data, run)


@pytest.mark.slow
def test_a_kill_at_every_write_point_recovers_to_the_uninterrupted_run(tmp_path, monkeypatch):
    epochs = 2
    data = _tiny_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)    # the children train on one thread; so must the runs they are compared with
    try:
        counter = _WritePoints(None)
        with monkeypatch.context() as patch:
            counter.install(patch.setattr)
            train(_tiny_config(epochs), data, tmp_path / "reference")
        reference = tmp_path / "reference"
        assert counter.count >= 4 + 7 * epochs - 2   # run.json, config.json; per epoch last, best, metrics

        context = multiprocessing.get_context("forkserver")
        # Children fork from a server that has imported all they need (torch._dynamo: Adam imports it
        # on first use, 5 s here), so each starts in a fraction of a second.
        context.set_forkserver_preload(["torch", "torch._dynamo", "vaekit.training.trainer", "vaekit.data", __name__])
        for kill_at in range(1, counter.count + 1):
            run = tmp_path / f"killed-{kill_at}"
            child = context.Process(target=_killed_training, args=(str(run), kill_at, epochs))
            child.start()
            child.join(120)
            assert child.exitcode == KILLED, (kill_at, child.exitcode)
            _finish(run, data, epochs)
            for name in ("last", "best"):
                assert _same_weights(reference / f"checkpoints/{name}.safetensors", run / f"checkpoints/{name}.safetensors"), (kill_at, name)
            assert _curve(run) == _curve(reference), kill_at
            assert _leftovers(run) == [], (kill_at, _leftovers(run))
    finally:
        torch.set_num_threads(threads)


def test_a_kill_while_best_is_written_leaves_nothing_stale(small_run, one_epoch_run, tmp_path):
    """The issue's two cases: best one epoch stale, and an epoch's metrics lost for good (even after
    resume). What a kill after `last` of epoch 2 left: best and metrics of epoch 1, half a line."""
    import vaekit.training.checkpoint as checkpoint

    assert checkpoint.load_checkpoint(small_run / "checkpoints/last.safetensors").state["best_epoch"] == 2
    cut = _copy(small_run, tmp_path)
    shutil.copy(one_epoch_run / "checkpoints/best.safetensors", cut / "checkpoints/best.safetensors")
    lines = (cut / "metrics.jsonl").read_text().splitlines()
    (cut / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:40])
    assert not _same_weights(small_run / "checkpoints/best.safetensors", cut / "checkpoints/best.safetensors")
    done = recover(cut)
    assert any("best.safetensors of epoch 2" in line for line in done)
    assert _same_weights(small_run / "checkpoints/best.safetensors", cut / "checkpoints/best.safetensors")
    assert _curve(cut) == _curve(small_run)
    assert recover(cut) == []     # nothing left to do


def test_leftover_temporary_files_are_removed_on_the_next_start(small_run, tmp_path):
    from vaekit.training.run import open_for_writing

    run = _copy(small_run, tmp_path)
    for name in (".run.json.x1.tmp", "checkpoints/.last.safetensors.x2.tmp", "checkpoints/.best.safetensors.x3.tmp"):
        (run / name).write_bytes(b"half written")
    with open_for_writing(run):       # what resume, evaluate and the figure commands start with
        assert _leftovers(run) == [LOCK_NAME]
    assert _leftovers(run) == []


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(small_run, tmp_path, digits_dataset):
    run = _copy(small_run, tmp_path)
    shutil.rmtree(run / "checkpoints")
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}\n')  # no checkpoint holds it
    resume(run, lambda cfg: digits_dataset)
    assert _same_weights(small_run / "checkpoints/last.safetensors", run / "checkpoints/last.safetensors")
    assert _curve(run) == _curve(small_run)


# -- 4. a full disk ----------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", ["safetensors", "oserror"])
def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoints(one_epoch_run, tmp_path, digits_dataset, monkeypatch, failure):
    import vaekit.training.checkpoint as checkpoint

    run = _copy(one_epoch_run, tmp_path)
    before = {name: (run / f"checkpoints/{name}.safetensors").read_bytes() for name in ("last", "best")}

    def full(tensors, path, metadata=None):
        Path(path).write_bytes(b"\0" * 100)   # part of the file got out before the disk filled
        if failure == "safetensors":          # what safetensors raises, from Rust
            raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                                  'message: "No space left on device" })')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(StorageError) as caught:
        resume(run, lambda cfg: digits_dataset, epochs=2)
    assert "last.safetensors: No space left on device" in str(caught.value) and "\n" not in str(caught.value)
    assert {name: (run / f"checkpoints/{name}.safetensors").read_bytes() for name in ("last", "best")} == before
    assert _leftovers(run) == [] and [r["epoch"] for r in _curve(run)] == [1]


def test_a_full_disk_while_the_metrics_line_is_written_loses_no_epoch(one_epoch_run, small_run, tmp_path, digits_dataset,
                                                                      monkeypatch):
    import builtins

    import vaekit.files as files

    run = _copy(one_epoch_run, tmp_path)

    def full(path, mode="r", *args, **kwargs):
        if "a" in mode:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", full, raising=False)
    with pytest.raises(StorageError, match="metrics.jsonl: No space left on device"):
        resume(run, lambda cfg: digits_dataset, epochs=2)
    monkeypatch.undo()
    with pytest.raises(RunError, match="already trained 2 epochs"):   # epoch 2 was committed in last
        resume(run, lambda cfg: digits_dataset, epochs=2)
    assert _curve(run) == _curve(small_run)


# -- 12. damaged run files: one-line errors -------------------------------------------------------
@pytest.mark.parametrize("damage", ["partial", "keyless", "garbage"])
def test_damaged_metrics_lines_are_skipped_on_report_and_dropped_on_resume(small_run, tmp_path, digits_dataset, damage, caplog):
    run = _copy(small_run, tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    bad = {"partial": lines[1][:25], "keyless": '{"loss": 1.0}', "garbage": "\x00\xff not json"}[damage]
    (run / "metrics.jsonl").write_text(lines[0] + "\n" + bad + "\n" + lines[1] + "\n")
    assert [r["epoch"] for r in open_run(run).history()] == [1, 2]
    assert "damaged line(s) 2" in caplog.text
    resume(run, lambda cfg: digits_dataset, epochs=3)
    assert [r["epoch"] for r in _curve(run)] == [1, 2, 3]


@pytest.mark.parametrize("content, needle", [
    ("[1, 2, 3]", "a list, not an object"),
    ('{"format": "vaekit-run/1", "config": null, "data": {"sample_shape": [1, 8, 8]}}', "config is NoneType"),
    ('{"format": "vaekit-run/1", "config": {"latent_dim": "x"}, "data": {"sample_shape": [1, 8, 8]}}', "invalid config"),
    ('{"format": "vaekit-run/1", "config": {}, "data": {"sample_shape": "big"}}', "sample_shape"),
    ("\x00\x01binary", "corrupt"),
])
def test_a_damaged_run_json_is_a_one_line_error(small_run, tmp_path, content, needle):
    run = _copy(small_run, tmp_path)
    (run / "run.json").write_text(content)
    with pytest.raises(RunError, match=needle):
        open_run(run)


def test_a_damaged_run_json_gives_no_traceback_on_the_command_line(small_run, tmp_path, capsys):
    run = _copy(small_run, tmp_path)
    (run / "run.json").write_text('{"format": "vaekit-run/1", "config": null, "data": {}}')
    assert_clean_error(run_cli("evaluate", str(run)), "run.json is corrupt")      # as a user runs it
    _one_error(*_cli(capsys, "train", "--resume", str(run)), "run.json is corrupt")
    _one_error(*_cli(capsys, "report", str(run)), "run.json is corrupt")


@pytest.mark.parametrize("state, needle", [
    ({"epoch": "abc"}, "epoch is 'abc'"),
    ({"epoch": -1}, "epoch is -1"),
    ([1, 2], "the state is a list"),
])
def test_damaged_checkpoint_metadata_is_a_one_line_error(small_run, tmp_path, digits_dataset, state, needle):
    from vaekit.training.checkpoint import META_KEY, load_checkpoint, write_checkpoint

    run = _copy(small_run, tmp_path)
    last = run / "checkpoints/last.safetensors"
    checkpoint = load_checkpoint(last)
    meta = dict(checkpoint.meta)
    meta["state"] = {**checkpoint.state, **state} if isinstance(state, dict) else state
    write_checkpoint(last, checkpoint.tensors, meta)
    assert META_KEY == "vaekit"
    with pytest.raises(RunError, match=needle):
        resume(run, lambda cfg: digits_dataset, epochs=3)


def test_optimizer_state_shaped_unlike_its_parameters_is_a_one_line_error(small_run, tmp_path, digits_dataset):
    """torch pairs optimizer state with parameters by position without checking shapes, and its fused
    Adam reads past a smaller buffer (a segmentation fault, met when a model's layers were re-ordered):
    a state that does not fit is refused before the first step, and the checkpoint is left as it was."""
    from vaekit.training.checkpoint import load_checkpoint, write_checkpoint

    run = _copy(small_run, tmp_path)
    last = run / "checkpoints/last.safetensors"
    checkpoint = load_checkpoint(last)
    tensors = dict(checkpoint.tensors)
    shapes = {k: v.shape for k, v in tensors.items() if k.startswith("optim.") and k.endswith(".exp_avg")}
    first, other = next((a, b) for a in shapes for b in shapes if shapes[a] != shapes[b])
    for name in ("exp_avg", "exp_avg_sq"):             # two parameters' moments trade places
        a, b = first.replace("exp_avg", name), other.replace("exp_avg", name)
        tensors[a], tensors[b] = tensors[b], tensors[a]
    write_checkpoint(last, tensors, checkpoint.meta)
    before = last.read_bytes()
    with pytest.raises(RunError, match=r"optimizer state does not fit the model in config.json \(exp_avg of parameter \d+ is "):
        resume(run, lambda cfg: digits_dataset, epochs=3)
    assert last.read_bytes() == before


@pytest.mark.parametrize("name, content, needle", [
    ("c.toml", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not text"),
    ("c.toml", b"hidden = [inf]\n", "hidden"),
    ("c.toml", b"seed = 1e26\n", "--seed must be a whole number"),
    ("c.yaml", b"latent_dim:\nepochs: 2\n", None),          # an empty value: not given
    ("c.json", b'{"lr": 1e400}', "--lr must be a positive number"),
    ("c.yaml", b"batch_size: .inf\n", "batch_size"),
])
def test_hostile_config_files(tmp_path, name, content, needle):
    from vaekit.training.config import build_config

    path = tmp_path / name
    path.write_bytes(content)
    if needle is None:
        assert build_config(path).latent_dim == 16
        return
    with pytest.raises(ConfigError, match=needle):
        build_config(path)


# -- 16. data that moved, and runs trained from arrays -------------------------------------------
def test_a_run_records_its_data_by_absolute_path_and_finds_it_after_a_move(tmp_path, tiny_npz, monkeypatch, capsys):
    from vaekit.data import load_dataset

    monkeypatch.chdir(tiny_npz.parent)
    dataset = load_dataset("tiny.npz")
    train(quick_config(dataset="tiny.npz", epochs=1, hidden=[8]), dataset, tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["config"]["dataset"] == str(tiny_npz.resolve()) == info["data"]["path"]
    assert info["data"]["fingerprint"]["sha256"] and info["data"]["fingerprint"]["bytes"] == tiny_npz.stat().st_size
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, data = load_model_and_data(tmp_path / "run")          # from another directory
    assert np.array_equal(data.test.x, dataset.test.x)

    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(tiny_npz, moved / "tiny.npz")
    with pytest.raises(DataError, match="not there any more: pass its new place with --dataset PATH"):
        load_model_and_data(tmp_path / "run")
    _, data = load_model_and_data(tmp_path / "run", data_dir=str(moved))
    assert np.array_equal(data.test.x, dataset.test.x)
    _, data = load_model_and_data(tmp_path / "run", dataset=str(moved / "tiny.npz"))
    assert np.array_equal(data.test.x, dataset.test.x)
    impostor = tmp_path / "impostor"
    impostor.mkdir()
    np.savez(impostor / "tiny.npz", x=np.zeros((200, 8, 8), np.uint8))
    with pytest.raises(DataError, match="holds no tiny.npz with the same contents"):
        load_model_and_data(tmp_path / "run", data_dir=str(impostor))
    # --resume finds them too, and run.json then records where they are now.
    code, err = _cli(capsys, "train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--data-dir", str(moved))
    assert code == 0, err
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["data"]["path"] == info["config"]["dataset"] == str((moved / "tiny.npz").resolve())
    _, data = load_model_and_data(tmp_path / "run")
    assert np.array_equal(data.test.x, dataset.test.x)


def test_a_folder_fingerprint_survives_a_move_and_sees_a_change(tmp_path):
    from vaekit.training.data_location import fingerprint

    folder = tmp_path / "images" / "cats"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(bytes(10 + i))
    before = fingerprint(tmp_path / "images")
    shutil.move(tmp_path / "images", tmp_path / "pictures")
    assert fingerprint(tmp_path / "pictures") == before
    (tmp_path / "pictures" / "cats" / "0.png").write_bytes(bytes(99))
    assert fingerprint(tmp_path / "pictures") != before


def test_a_run_trained_from_arrays_samples_and_asks_for_data_where_it_needs_them(tmp_path, capsys):
    import vaekit
    from vaekit.evaluation.evaluate import evaluate

    x = (np.random.default_rng(0).random((300, 6, 6)) > 0.5).astype(np.float32)
    run = tmp_path / "toy"
    vaekit.train(x, model="vae", arch="mlp", hidden=[8], latent_dim=2, epochs=1, device="cpu", out=run)
    # The commands that need no data, as a user runs them (one interpreter for both, to save a start).
    code = ("import sys; from vaekit.cli.app import main; run = sys.argv[1]\n"
            "assert main(['sample', run, '-n', '4', '--device', 'cpu']) == 0\n"
            "assert main(['traverse', run, '--device', 'cpu']) == 0")
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (run / "figures" / "sample.png").is_file() and (run / "figures" / "traverse.png").is_file()
    assert "around z = 0" in done.stdout
    _one_error(*_cli(capsys, "evaluate", str(run), "--device", "cpu"), "in-memory arrays", "--dataset PATH")
    _one_error(*_cli(capsys, "reconstruct", str(run), "--device", "cpu"), "in-memory arrays", "--dataset PATH")
    np.save(tmp_path / "toy.npy", x)
    result = evaluate(run, dataset=str(tmp_path / "toy.npy"), iw_samples=2, regularity=False)
    assert result["n"] > 0


def test_every_default_figure_name_is_one_overwrite_knows():
    """--overwrite removes RUN/figures/<name>.png for the names it knows: every figure command's."""
    from vaekit.cli.app import build_parser
    from vaekit.training.run import FIGURE_NAMES

    parser = build_parser(model_options=False)
    commands = next(a for a in parser._actions if a.dest == "command").choices
    figure_commands = [name for name, sub in commands.items() if "RUN/figures/" in (sub.format_help())]
    assert len(figure_commands) >= 7 and set(figure_commands) <= set(FIGURE_NAMES)


# -- 17. torchrun's refusal of a single-process model ----------------------------------------------
@pytest.mark.slow
def test_torchrun_refuses_factor_vae_once_and_leaves_no_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               *_vaekit_command(), "train", "--dataset", "digits", "--model", "factor-vae", "--device", "cpu", "--out", "R"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("vaekit: error: ")]
    assert errors == ["vaekit: error: --model factor-vae trains an auxiliary network, which distributed training "
                      "does not support: run it in one process"], done.stderr
    # torchrun's own failure summary (its traceback cannot be avoided) names that error as the root cause.
    assert "traceback : vaekit: error: --model factor-vae" in done.stderr
    assert not (tmp_path / "R").exists()
