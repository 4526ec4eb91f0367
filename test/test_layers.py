"""The package's layers only look down: every import of dytrack_ros code (including imports inside functions) goes
to a layer the importing layer may use. The layer list is dytrack_ros.LAYERS; the table in docs/api.md ('Where things
are') must name the same layers in the same order."""
import ast
import os

import pytest

from dytrack_ros import LAYERS

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dytrack_ros")

ALLOWED = {layer: set(allowed) for layer, allowed in LAYERS.items()}


def layer_of(relpath: str) -> str:
    """'tracking/tracker.py' -> 'tracking'; 'contract.py' -> 'contract'"""
    return relpath.split(os.sep)[0].removesuffix(".py")


def imported_layers(source: str, relpath: str):
    """(line, layer) of every dytrack_ros import in a module's source."""
    parts = relpath.removesuffix(".py").split(os.sep)
    package = parts[:-1]                     # the module's package, relative to dytrack_ros
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:                   # relative: climb from the module's package
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
                if not target:               # "from .. import x": x names the layer
                    for alias in node.names:
                        yield node.lineno, alias.name
                    continue
                yield node.lineno, target[0]
            elif node.module and node.module.startswith("dytrack_ros."):
                yield node.lineno, node.module.split(".")[1]
            elif node.module == "dytrack_ros":  # "from dytrack_ros import evaluation": the names are layers
                for alias in node.names:
                    if alias.name in ALLOWED:
                        yield node.lineno, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dytrack_ros."):
                    yield node.lineno, alias.name.split(".")[1]


def violations(source: str, relpath: str):
    own = layer_of(relpath)
    return [f"{relpath}:{line} ({own}) imports {target}" for line, target in imported_layers(source, relpath)
            if target != own and target not in ALLOWED[own]]


def package_modules():
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), PACKAGE)
            if name.endswith(".py") and rel != "__init__.py" and layer_of(rel) not in ("msg", "srv"):
                yield rel


def test_every_module_belongs_to_a_known_layer():
    unknown = {layer_of(rel) for rel in package_modules()} - set(ALLOWED)
    assert not unknown, f"modules outside the layer list: {unknown} (add them to ALLOWED and docs/api.md)"


def test_layers_only_import_layers_below_them():
    found = []
    for rel in package_modules():
        with open(os.path.join(PACKAGE, rel)) as f:
            found += violations(f.read(), rel)
    assert not found, "upward or sideways imports:\n" + "\n".join(found)


@pytest.mark.parametrize("relpath,line", [
    (os.path.join("tracking", "tracker.py"), "from ..backends.base import StagedBackend"),   # tracker -> backends
    (os.path.join("backends", "export.py"), "    from ..data.photos import load_photos"),  # export -> data
    (os.path.join("training", "train.py"), "from ..evaluation import datasets"),             # training -> evaluation
    (os.path.join("training", "train.py"), "from dytrack_ros import evaluation"),           # the absolute form
    (os.path.join("tracking", "tracker.py"), "    import dytrack_ros.backends.base"),
    (os.path.join("tracking", "factory.py"), "from .. import backends"),
    ("contract.py", "import dytrack_ros.model"),
])
def test_the_check_catches_the_upward_imports_this_package_once_had(relpath, line):
    source = f"def f():\n{line}\n" if line.startswith(" ") else line + "\n"
    assert violations(source, relpath)


def test_the_check_accepts_downward_imports():
    assert not violations("from ..contract import StagedBackend\nfrom .crops import crop_side\n",
                          os.path.join("tracking", "tracker.py"))
    assert not violations("from .tracking.tracker import DyTracker\nfrom .backends import create_backend\n",
                          "runtime.py")


def test_docs_layer_table_follows_the_layer_list():
    page = open(os.path.join(os.path.dirname(PACKAGE), "docs", "api.md")).read()
    table = page.split("## Where things are", 1)[1].split("\n\n")[2]
    folders = [line.split("|")[2].strip() for line in table.splitlines()[2:]]
    named = []
    for folder in folders:
        for layer in LAYERS:
            if f"dytrack_ros/{layer}" in folder and layer not in named:
                named.append(layer)
    assert named == list(LAYERS), named


def test_one_version_number():
    import re
    import dytrack_ros
    xml = open(os.path.join(os.path.dirname(PACKAGE), "package.xml")).read()
    assert re.search(r"<version>([^<]+)</version>", xml).group(1) == dytrack_ros.__version__
    assert "version=package_version()" in open(os.path.join(os.path.dirname(PACKAGE), "setup.py")).read()


def test_parameters_are_specified_once_and_every_copy_agrees():
    """params.NodeParams (defaults) + DESCRIPTIONS (text, range) are the spec; validate() enforces those ranges, and
    config/tracker.yaml and the parameter table of docs/ros_interface.md list the same names with the same defaults
    (the table also says which ones change at run time: NodeParams.RUNTIME_CHANGEABLE)."""
    import math
    import yaml
    from dytrack_ros.ros.params import DESCRIPTIONS, NodeParams, ParameterError, validate
    defaults = vars(NodeParams())
    assert set(defaults) == set(DESCRIPTIONS)
    root = os.path.dirname(PACKAGE)
    yaml_values = yaml.safe_load(open(os.path.join(root, "config", "tracker.yaml")))["/**"]["ros__parameters"]
    assert set(yaml_values) == set(defaults) - {"exit_thresholds"}        # that one defaults to the model's
    for name, value in yaml_values.items():
        assert value == defaults[name], name
    page = open(os.path.join(root, "docs", "ros_interface.md")).read().split("\n## Parameters", 1)[1]
    rows = [line for line in page.split("\n## ", 1)[0].splitlines() if line.startswith("| `")]
    table = {}                                         # name -> (default cell, run-time cell)
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        names, row_defaults = cells[0].split(", "), cells[1].split(", ")
        for i, name in enumerate(names):
            table[name.strip("`")] = (row_defaults[i] if len(row_defaults) == len(names) else cells[1], cells[2])
    assert set(table) == set(defaults), ("docs/ros_interface.md parameter table, missing:",
                                         set(defaults) - set(table), "not parameters:", set(table) - set(defaults))
    for name, value in defaults.items():
        cell, runtime = table[name]
        assert runtime == ("**yes**" if name in NodeParams.RUNTIME_CHANGEABLE else "no"), (name, runtime)
        if name == "exit_thresholds":
            continue                                   # the model's calibrated values
        shown = {True: "true", False: "false"}.get(value, '""' if value == "" else str(value)) \
            if isinstance(value, (bool, str)) else f"{value:g}" if isinstance(value, float) else str(value)
        assert cell.split(" (")[0] in (f"`{shown}`", f"`{value}`"), (name, cell, shown)
    for name, (_, bounds) in DESCRIPTIONS.items():
        if bounds is None:
            continue
        for bad in (bounds[0] - 1, bounds[1] + 1, math.nan):
            p = NodeParams()
            setattr(p, name, type(defaults[name])(bad) if not math.isnan(bad) else bad)
            if isinstance(defaults[name], int) and math.isnan(bad):
                continue
            with pytest.raises(ParameterError, match=name):
                validate(p)
