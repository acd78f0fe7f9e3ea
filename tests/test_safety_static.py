"""Issue 8 (safety): the source never unpickles, never loads YAML unsafely, never builds shell
commands, and only enables ``trust_remote_code`` from an explicit flag."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "gdo"


def _modules():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10, "package sources not found"
    for f in files:
        yield f, ast.parse(f.read_text(encoding="utf-8"), filename=str(f))


def _call_name(node: ast.Call) -> str:
    fn = node.func
    parts = []
    while isinstance(fn, ast.Attribute):
        parts.append(fn.attr)
        fn = fn.value
    if isinstance(fn, ast.Name):
        parts.append(fn.id)
    return ".".join(reversed(parts))


def test_no_pickle_or_unsafe_loaders():
    offenders = []
    for f, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                if any(n and n.split(".")[0] in {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal"} for n in names):
                    offenders.append(f"{f.name}:{node.lineno} imports a pickle-like module")
            if isinstance(node, ast.Call):
                name = _call_name(node)
                if name in {"yaml.load", "yaml.unsafe_load", "yaml.full_load"}:
                    offenders.append(f"{f.name}:{node.lineno} {name}")
                if name.endswith("np.load") or name == "numpy.load":
                    kw = {k.arg: k.value for k in node.keywords}
                    v = kw.get("allow_pickle")
                    if isinstance(v, ast.Constant) and v.value is True:
                        offenders.append(f"{f.name}:{node.lineno} np.load(allow_pickle=True)")
                if name == "torch.load":
                    kw = {k.arg: k.value for k in node.keywords}
                    v = kw.get("weights_only")
                    if not (isinstance(v, ast.Constant) and v.value is True):
                        offenders.append(f"{f.name}:{node.lineno} torch.load without weights_only=True")
    assert offenders == []


def test_no_shell_commands():
    offenders = []
    for f, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                if name in {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"}:
                    offenders.append(f"{f.name}:{node.lineno} {name}")
                for k in node.keywords:
                    if k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False):
                        offenders.append(f"{f.name}:{node.lineno} shell=...")
    assert offenders == []


def test_trust_remote_code_never_hard_enabled():
    offenders = []
    for f, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                if isinstance(node.value, ast.Constant) and node.value.value is True:
                    offenders.append(f"{f.name}: trust_remote_code=True")
    assert offenders == []
