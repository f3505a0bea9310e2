"""The package's shape: no import cycles, no private torch or MKL symbols, no probing of models for
attributes the contract defines, and a model straight from ``vaekit.train`` works everywhere."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

import vaekit

SRC = Path(vaekit.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _import_graph() -> dict[str, set[str]]:
    """Every import between vaekit's modules, at module level or inside functions."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and ast.unparse(node.test) == "TYPE_CHECKING" for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    graph[name].add(target if target in modules else base)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names)
    return {name: {t for t in targets if t in modules and t != name} for name, targets in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_inside_vaekit():
    graph = _import_graph()
    assert "vaekit.training.run" in graph["vaekit.training.trainer"]     # the graph does see imports
    assert _cycles(graph) == []


LAYERS = ["data", "nn", "models", "training", "latent", "disentanglement", "evaluation", "export", "figures", "serve",
          "bench", "cli"]


def test_packages_import_only_the_layers_below_them():
    """The README's layer order: a package never imports one listed after it (typing-only imports aside)."""
    upward = []
    for name, targets in _import_graph().items():
        source = name.split(".")[1] if name.count(".") >= 1 else None
        for target in targets:
            goal = target.split(".")[1] if target.count(".") >= 1 else None
            if source in LAYERS and goal in LAYERS and LAYERS.index(goal) > LAYERS.index(source):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_private_torch_or_blas_symbols():
    pattern = re.compile(r"cblas_|torch\.ops\.mkl|torch\._C\._|dlsym|CDLL\(.*torch|\._mkl_")
    offenders = [f"{path.relative_to(SRC)}:{number}" for path in SRC.rglob("*") if path.suffix in (".py", ".c")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_models_are_not_probed_for_what_the_contract_defines():
    """The base class gives every hook and attribute a default, so callers use them directly."""
    probe = re.compile(r"\b(getattr|hasattr)\((self\.)?(model|network|posterior|type\(model\))\b")
    offenders = [f"{path.relative_to(SRC)}:{number}: {line.strip()}" for path in SRC.rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if probe.search(line)]
    assert offenders == []


def test_figures_work_on_a_model_straight_from_train(tmp_path):
    import torch

    from vaekit import figures

    dataset = vaekit.load_dataset("digits")
    result = vaekit.train("digits", model="vae", latent_dim=2, hidden=[32], epochs=1, out=None)
    model = result.model.eval()
    assert model.class_names == dataset.class_names
    made = figures.reconstruction(model, dataset, n=4)
    x = torch.as_tensor(np.asarray(dataset.test.x[:4]))
    with torch.no_grad():
        mse = float((model.reconstruct(x) - x).pow(2).mean())
    assert re.search(r"MSE per pixel over these 4 images: ([\d.]+)", made.summary).group(1) == f"{mse:.5f}"
    titles = [tick.get_text() for ax in made.figure.axes for tick in ax.get_xticklabels()]
    assert dataset.class_names[int(dataset.test.y[0])] in titles[0]       # columns are named by class
    assert figures.latent_map(model, dataset, max_points=200).figure.axes
    path = tmp_path / "samples.png"
    figures.samples(model, dataset, n=4).figure.savefig(path)
    assert path.stat().st_size > 1000
    # The same through a run folder: the loaded model knows its class names from the run, not from a patch.
    vaekit.train("digits", model="vae", latent_dim=2, hidden=[32], epochs=1, out=tmp_path / "run")
    assert vaekit.load(tmp_path / "run").class_names == dataset.class_names
