"""Where bf16 pays: telling hardware with bfloat16 dot products from hardware without, ``--precision
auto``, the warning for bf16 where it is slow, and a bf16 recipe's ``[recipe.without-bf16]`` settings,
which ``vaekit reproduce`` trains by itself on such hardware.

The detection reads /proc/cpuinfo; the tests give it excerpts of real files (an AVX2-only AMD EPYC, a
Sapphire Rapids Xeon, a Graviton 3) and patch it where a whole run is trained, so they pass the same
on any machine.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

import pytest
import torch

from conftest import quick_config
from vaekit.cli import render
from vaekit.cli.app import main
from vaekit.cpuinfo import cpu_flags
from vaekit.errors import ConfigError
from vaekit.evaluation.reproduce import fallback_settings, training_plan
from vaekit.training import acceleration
from vaekit.training.config import build_config
from vaekit.training.recipes import load_recipe
from vaekit.training.trainer import Trainer, train

CPU = torch.device("cpu")
EPYC_AVX2 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B12\n"
             "flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni\n"
             "bugs\t\t: sysret_ss_attrs spectre_v1\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
XEON_AMX = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
            "flags\t\t: fpu sse avx avx2 avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8\n")
ZEN4 = "processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
GRAVITON3 = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd evtstrm aes sha1 sve asimddp bf16 i8mm\n"
GRAVITON2 = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"
RECIPE = "fashion-mnist-hvae-vamp"                      # the shipped recipe that trains in bf16
FALLBACK = {"precision": "fp32", "epochs": 180, "kl_warmup": 60.0}


@pytest.mark.parametrize("cpuinfo, expected", [
    (EPYC_AVX2, False), (XEON_AMX, True), (ZEN4, True), (GRAVITON3, True), (GRAVITON2, False),
    ("processor\t: 0\nmodel name\t: something\n", None),   # no flags line: cannot tell
])
def test_bf16_dot_products_are_read_from_the_cpus_flags(cpuinfo, expected):
    assert acceleration.bf16_dot_products(CPU, cpuinfo) is expected


def test_the_flags_are_the_first_cpus_as_a_set():
    assert cpu_flags(EPYC_AVX2) == {"fpu", "vme", "de", "pse", "tsc", "msr", "sse", "sse2", "ssse3", "fma",
                                                 "sse4_1", "sse4_2", "avx", "f16c", "avx2", "bmi2", "sha_ni"}
    assert "bf16" in cpu_flags(GRAVITON3)
    assert cpu_flags("") is None


def test_a_device_it_cannot_inspect_is_unknown():
    assert acceleration.bf16_dot_products(torch.device("mps")) is None


@pytest.mark.parametrize("has_bf16, auto", [(True, "bf16"), (False, "fp32"), (None, "fp32")])
def test_auto_is_bf16_only_where_the_device_is_known_to_have_it(has_bf16, auto, monkeypatch):
    monkeypatch.setattr(acceleration, "bf16_dot_products", lambda device, cpuinfo=None: has_bf16)
    assert acceleration.resolve_precision("auto", CPU) == auto
    assert acceleration.resolve_precision("fp32", CPU) == "fp32"
    assert acceleration.resolve_precision("bf16", CPU) == "bf16"     # asked for: kept, if slow


@pytest.mark.parametrize("has_bf16, warned", [(False, True), (True, False), (None, False)])
def test_bf16_where_it_is_emulated_is_warned(has_bf16, warned, monkeypatch, caplog):
    monkeypatch.setattr(acceleration, "bf16_dot_products", lambda device, cpuinfo=None: has_bf16)
    with caplog.at_level(logging.WARNING, logger="vaekit.training.acceleration"):
        acceleration.resolve_precision("bf16", CPU)
        acceleration.resolve_precision("fp32", CPU)
        acceleration.resolve_precision("auto", CPU)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == int(warned)
    if warned:
        assert "no bfloat16 dot products" in warnings[0] and "--precision fp32 or auto" in warnings[0]


def test_an_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="choose one of fp32, bf16, auto"):
        acceleration.resolve_precision("fp16", CPU)
    with pytest.raises(ConfigError, match="resolve it first"):
        acceleration.autocast("auto", CPU)


@pytest.mark.parametrize("has_bf16, dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_a_run_in_auto_trains_in_what_it_resolved_and_records_it(has_bf16, dtype, digits_dataset, monkeypatch, tmp_path):
    monkeypatch.setattr(acceleration, "bf16_dot_products", lambda device, cpuinfo=None: has_bf16)
    seen = []
    original = Trainer.__init__

    def watched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.model.decoder.register_forward_hook(   # the training steps' forward passes (validation is float32)
            lambda module, inputs, output: seen.append(output.dtype) if module.training else None)

    monkeypatch.setattr(Trainer, "__init__", watched)
    train(quick_config(precision="auto", epochs=1), digits_dataset, tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["config"]["precision"] == "auto"                      # what was asked for
    assert info["hardware"]["precision"] == ("bf16" if has_bf16 else "fp32")   # what it trained in
    assert info["hardware"]["bf16_dot_products"] is has_bf16 and info["hardware"]["device"] == "cpu"
    assert info["hardware"]["threads"] == torch.get_num_threads()
    assert seen and set(seen) == {dtype}


# -- a bf16 recipe's settings without bf16 ---------------------------------------------------------------
def test_the_bf16_recipe_gives_settings_without_it_that_change_only_precision_and_schedule():
    recipe = load_recipe(RECIPE)
    assert recipe.precision == "bf16" and recipe.without_bf16 == FALLBACK
    as_written, without = asdict(recipe.config()), asdict(recipe.config(without_bf16=True))
    assert {k: without[k] for k in FALLBACK} == FALLBACK
    assert {k: v for k, v in without.items() if k not in FALLBACK} == \
           {k: v for k, v in as_written.items() if k not in FALLBACK}
    quick = recipe.config({"epochs": 1, "kl-warmup": None}, without_bf16=True)   # the command line wins
    assert (quick.epochs, quick.kl_warmup, quick.precision) == (1, 60.0, "fp32")
    assert fallback_settings(recipe) == "--precision fp32 --epochs 180 --kl-warmup 60"


def test_only_the_bf16_hour_recipe_has_such_settings():
    """The two recipes that train in bf16 are the hour recipe and its two-hour IW variant; the variant
    has no hour to fill, so without bf16 it trains its own settings in fp32 (no table of its own)."""
    from vaekit.training.recipes import list_recipes

    assert {r.name for r in list_recipes() if r.without_bf16 is not None} == {RECIPE}
    assert {r.name for r in list_recipes() if r.precision == "bf16"} == {RECIPE, f"{RECIPE}-iw"}
    variant = load_recipe(f"{RECIPE}-iw")
    assert fallback_settings(variant) == "--precision fp32"
    assert asdict(variant.config(without_bf16=True)) == {**asdict(variant.config()), "precision": "fp32"}


@pytest.mark.parametrize("has_bf16, fallback", [(True, False), (False, True), (None, True)])
def test_reproduce_plans_the_settings_for_the_hardware(has_bf16, fallback, monkeypatch):
    monkeypatch.setattr(acceleration, "bf16_dot_products", lambda device, cpuinfo=None: has_bf16)
    recipe = load_recipe(RECIPE)
    config, used = training_plan(recipe)                               # auto
    assert used is fallback and (config.precision, config.epochs) == (("fp32", 180) if fallback else ("bf16", 250))
    assert training_plan(recipe, precision="bf16")[1] is False         # kept as written, whatever the hardware
    config, used = training_plan(recipe, precision="fp32")
    assert used and (config.precision, config.epochs, config.kl_warmup) == ("fp32", 180, 60.0)
    fp32_recipe = load_recipe("fashion-mnist-vae")                     # nothing to fall back from
    for precision in ("auto", "fp32"):
        assert training_plan(fp32_recipe, precision=precision) == (fp32_recipe.config(), False)
    config, used = training_plan(fp32_recipe, precision="bf16")
    assert config.precision == "bf16" and not used


def test_reproduce_trains_the_settings_without_bf16_by_itself(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(acceleration, "bf16_dot_products", lambda device, cpuinfo=None: False)
    out = tmp_path / "run"
    code = main(["reproduce", RECIPE, "--dataset", "digits", "--val-size", "50", "--epochs", "1",
                 "--iw-samples", "5", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert ("training the recipe's settings without bf16 (--precision fp32 --epochs 180 --kl-warmup 60): "
            "this device has no bfloat16 dot products") in printed
    assert "trained the recipe's settings without bf16" in printed
    saved = json.loads((out / "config.json").read_text())
    assert (saved["precision"], saved["kl_warmup"], saved["epochs"]) == ("fp32", 60.0, 1)   # --epochs still wins


def test_the_recipe_listing_shows_the_settings_without_bf16(capsys):
    assert main(["recipes", RECIPE]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("without bf16:"))
    assert "--precision fp32 --epochs 180 --kl-warmup 60" in line


@pytest.mark.parametrize("has_bf16, hinted", [(False, True), (None, True), (True, False)])
def test_train_config_hints_at_the_recipes_settings_where_bf16_is_slow(has_bf16, hinted, monkeypatch, capsys):
    monkeypatch.setattr(acceleration, "bf16_dot_products", lambda device, cpuinfo=None: has_bf16)
    recipe = load_recipe(RECIPE)
    render.precision_hint(recipe.path, build_config(recipe.path))
    err = capsys.readouterr().err
    assert ("vaekit: hint:" in err and "--precision fp32 --epochs 180 --kl-warmup 60" in err) is hinted
    render.precision_hint(recipe.path, build_config(recipe.path, {"precision": "fp32"}))   # already fp32
    render.precision_hint(load_recipe("fashion-mnist-vae").path, build_config(recipe.path))  # no such table
    assert capsys.readouterr().err == ""


BASE = 'model = "vae"\nprecision = "bf16"\n\n[recipe]\ntitle = "t"\npaper = "p"\nprotocol = "q"\nmetric = "m"\n' \
       'changes = ["c"]\niw-samples = 10\n'


@pytest.mark.parametrize("text, message", [
    (BASE.replace('precision = "bf16"\n', "") + '\n[recipe.without-bf16]\nepochs = 3\n',
     "applies only to a recipe that trains in bf16"),
    (BASE + '\n[recipe.without-bf16]\nprecision = "bf16"\n', "must not train in bf16"),
    (BASE + '\n[recipe.without-bf16]\nepoch = 3\n', "unknown key 'epoch'"),
    (BASE + 'without-bf16 = 3\n', "must be a table of training keys"),
])
def test_a_bad_table_of_settings_without_bf16_is_a_one_line_error(text, message, tmp_path, capsys):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    assert main(["recipes", str(file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaekit: error: ") and message in err and "\n" not in err


def test_a_table_without_precision_means_fp32(tmp_path):
    file = tmp_path / "r.toml"
    file.write_text(BASE + '\n[recipe.without-bf16]\nepochs = 3\n')
    recipe = load_recipe(str(file))
    assert recipe.without_bf16 == {"precision": "fp32", "epochs": 3}
    assert (recipe.config(without_bf16=True).precision, recipe.config().precision) == ("fp32", "bf16")
