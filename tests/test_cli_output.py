"""What the command line shows: progress without a terminal, units, and each model's own help."""
from __future__ import annotations

import io
import time

from vaekit.cli import render
from vaekit.cli.app import main


class Piped(io.StringIO):
    """A stream that is not a terminal, like stderr piped into a log file."""

    def isatty(self) -> bool:
        return False


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def wait_for(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_training_without_a_terminal_prints_a_progress_line_every_few_seconds():
    stream = Piped()
    with render.TrainBar(stream=stream, every=0.05) as bar:
        bar.on_train_start(start_epoch=0, epochs=3, steps_per_epoch=400)
        bar.on_batch(epoch=0, batch=120, steps_per_epoch=400, values={"loss": 231.5})
        wait_for(lambda: "batch 120/400" in stream.getvalue())
        bar.on_batch(epoch=0, batch=400, steps_per_epoch=400, values={"loss": 230.0})
        wait_for(lambda: "validating" in stream.getvalue())
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("epoch 1/3: batch 120/400 (30%)") and line.endswith("loss 231.50") for line in lines), lines
    assert any(line.startswith("epoch 1/3: all 400 batches done, validating") for line in lines), lines
    time.sleep(0.15)
    assert stream.getvalue().splitlines() == lines       # the ticker stopped with the block


def test_an_epoch_line_names_the_importance_weighted_bound_and_gives_the_elbo_beside_it():
    stream = Piped()
    record = {"epoch": 2, "train_loss": 224.5, "val_loss": 225.98, "val_recon": 209.83, "val_kl": 17.46,
              "images_per_s": 2613.0, "best": True}
    bar = render.TrainBar(stream=stream, every=60)
    bar.epochs = 250
    bar.on_epoch_end({**record, "val_iw_bound": -225.98})
    bar.on_epoch_end(record)
    iw, elbo = stream.getvalue().splitlines()
    assert iw == "epoch   2/250  loss 224.50  val 225.98  (IW bound; -ELBO 227.29 = recon 209.83 + kl 17.46)  2,613 img/s *"
    assert elbo == "epoch   2/250  loss 224.50  val 225.98  (recon 209.83 + kl 17.46)  2,613 img/s *"


def test_an_epoch_line_gives_the_training_time_and_what_is_left(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(render.time, "monotonic", lambda: clock[0])
    stream = Piped()
    bar = render.TrainBar(stream=stream, every=60)
    bar.on_train_start(start_epoch=40, epochs=250, steps_per_epoch=500)   # resumed after epoch 40
    record = {"train_loss": 224.5, "val_loss": 225.98, "images_per_s": 2613.0}
    for epoch, seconds in ((41, 20.0), (42, 24.0)):
        clock[0] += seconds
        bar.on_epoch_end({**record, "epoch": epoch, "elapsed_s": 800.0 + clock[0] - 1000.0})
    clock[0] += 30.0
    bar.on_epoch_end({**record, "epoch": 250, "elapsed_s": 874.0})
    resumed, first, second, last = stream.getvalue().splitlines()
    assert resumed == "resuming after epoch 40 of 250"
    assert first.endswith("2,613 img/s  [13 min 40 s; about 1 h 10 min left]")   # 209 epochs of 20 s: 69.7 min
    assert second.endswith("  [14 min 04 s; about 1 h 16 min left]")             # 208 of 22 s: 76.3 min
    assert last.endswith("  [14 min 34 s]")                                      # nothing left


def test_rough_times_round_to_the_minute():
    assert [render._rough(s) for s in (29, 31, 2832, 7500)] == ["under a minute", "1 min", "47 min", "2 h 05 min"]


def test_counted_work_without_a_terminal_prints_progress_and_a_terminal_gets_only_the_bar():
    stream = Piped()
    with render.CountBar("evaluating", unit="img", stream=stream, every=0.05) as progress:
        time.sleep(0.12)
        assert stream.getvalue() == ""                   # nothing to say before the first count
        progress(2_500, 10_000)
        wait_for(lambda: "2,500/10,000 img (25%)" in stream.getvalue())
    assert "evaluating: 2,500/10,000 img (25%)" in stream.getvalue()

    terminal = Terminal()
    with render.TrainBar(stream=terminal, every=0.05) as bar:
        bar.on_train_start(start_epoch=0, epochs=1, steps_per_epoch=10)
        time.sleep(0.15)
    assert "batch" not in terminal.getvalue()


def test_an_mse_autoencoder_is_not_reported_in_nats():
    result = {"split": "test", "n": 10, "likelihood": "mse", "proper_likelihood": False, "recon": 12.5, "kl": None,
              "nelbo": None, "nll": None, "iw_samples": None, "bits_per_dim": None, "mse": 0.02, "pca_mse": 0.03,
              "latent_dim": 2, "active_units": None, "notes": ["mse is not a normalised likelihood"]}
    table = render.eval_table(result)
    recon = next(line for line in table.splitlines() if line.startswith("reconstruction"))
    assert "nats" not in recon.replace("not nats", "") and "a loss" in recon
    proper = render.eval_table({**result, "likelihood": "bernoulli", "proper_likelihood": True, "notes": []})
    assert next(line for line in proper.splitlines() if line.startswith("reconstruction")).endswith("12.500 nats")


def test_models_shows_each_model_its_own_option_help(capsys):
    from vaekit.models import model_options

    for name in ("beta-tcvae", "factor-vae", "capacity-vae"):
        assert main(["models", name]) == 0
        printed = capsys.readouterr().out
        [line] = [line for line in printed.splitlines() if line.strip().startswith("--gamma")]
        own = next(info for info in model_options(name) if info.name == "gamma")
        assert line.strip().endswith(own.help) and f"default {own.default_text}:" in line
