"""Types: the package passes mypy, and the public API annotates every argument and return."""

import inspect
import subprocess
import sys
from pathlib import Path

import eqneuron as eqn

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_errors():
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "eqneuron"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _own_functions(namespace, module_name):
    """The public functions (and class members) a module defines itself."""
    for name, obj in vars(namespace).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield from _class_members(obj)


def _class_members(cls):
    """A class's own `__init__`, public methods and properties."""
    for name, attr in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(attr, property):
            attr = attr.fget
        elif isinstance(attr, classmethod | staticmethod):
            attr = attr.__func__
        if inspect.isfunction(attr):
            yield f"{cls.__name__}.{name}", attr


def _exported_functions():
    for name in eqn.__all__:
        obj = getattr(eqn, name)
        if inspect.ismodule(obj):
            for qualname, function in _own_functions(obj, obj.__name__):
                yield f"{name}.{qualname}", function
        elif inspect.isclass(obj):
            for qualname, function in _class_members(obj):
                yield qualname, function
        elif inspect.isfunction(obj):
            yield name, obj


def _unannotated(function):
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    if parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    missing = [p.name for p in parameters if p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_the_exported_functions_are_found():
    names = {name for name, _ in _exported_functions()}
    for name in ("simulate", "compile_model", "Population.replace", "connect.fixed_fan_in", "losses.ttfs_cross_entropy"):
        assert name in names


def test_every_exported_function_annotates_its_arguments_and_return():
    missing = {name: gaps for name, function in _exported_functions() if (gaps := _unannotated(function))}
    assert not missing, f"unannotated arguments or returns: {missing}"
