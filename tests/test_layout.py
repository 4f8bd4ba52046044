"""The architecture as a test: kerashw's modules import only modules before them in
ORDER (README's Architecture section is this list), nothing in kerashw imports
textual, only the CLI imports click (and the TUI, for `kerashw tui`), and the store
never imports keras. Every import counts, also the ones inside functions."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ORDER = [
    "kerashw", "kerashw.config", "kerashw.record", "kerashw.runfiles", "kerashw.images", "kerashw.listener",
    "kerashw.stdio", "kerashw.atomic", "kerashw.training", "kerashw.training.stopping", "kerashw.parallel",
    "kerashw.training.precision", "kerashw.training.distribute",
    "kerashw.store.claims", "kerashw.store.db", "kerashw.store", "kerashw.study", "kerashw.task",
    "kerashw.pipeline", "kerashw.rundata", "kerashw.serving", "kerashw.blocks",
    "kerashw.mnist", "kerashw.mnist.constants", "kerashw.mnist.studies", "kerashw.mnist.source",
    "kerashw.mnist.models", "kerashw.mnist.task", "kerashw.mnist.definition",
    "kerashw.captcha", "kerashw.captcha.constants", "kerashw.captcha.synth",
    "kerashw.captcha.preprocess", "kerashw.captcha.folders", "kerashw.captcha.cache", "kerashw.captcha.models",
    "kerashw.captcha.task", "kerashw.captcha.preview", "kerashw.captcha.kfold", "kerashw.captcha.definition",
    "kerashw.captcha.studies",
    "kerashw.tasks", "kerashw.studyfile", "kerashw.studies", "kerashw.models", "kerashw.identity", "kerashw.membership", "kerashw.estimate",
    "kerashw.training.callbacks", "kerashw.training.warmstart", "kerashw.training.board", "kerashw.training.towers", "kerashw.training.train", "kerashw.reports", "kerashw.reports.tables", "kerashw.portable",
    "kerashw.export", "kerashw.reports.figures", "kerashw.reports.writeup", "kerashw.audit",
    "kerashw.cluster", "kerashw.cluster.payload", "kerashw.cluster.node", "kerashw.cluster.driver",
    "kerashw.cli.progress", "kerashw.cli.workers", "kerashw.cli.main", "kerashw.cli.datacmds", "kerashw.cli", "kerashw.cli.__main__",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports; `from kerashw import x` is kerashw.x when x is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in ORDER}
    return found


def test_every_kerashw_module_is_placed_in_the_order():
    modules = {_module_name(p) for p in (ROOT / "kerashw").rglob("*.py")}
    assert modules == set(ORDER)


def test_kerashw_imports_only_what_comes_before():
    for path in (ROOT / "kerashw").rglob("*.py"):
        me = _module_name(path)
        for imported in _imports(path):
            if imported.startswith("kerashw"):
                target = imported if imported in ORDER else imported.rsplit(".", 1)[0]
                assert ORDER.index(target) <= ORDER.index(me), f"{me} imports {imported}, which comes after it"


def test_front_end_libraries_stay_at_the_edges():
    for path in (ROOT / "kerashw").rglob("*.py"):
        me, imported = _module_name(path), _imports(path)
        top = {name.split(".")[0] for name in imported}
        assert "textual" not in top, f"{me} imports textual"
        if me != "kerashw.cli" and not me.startswith("kerashw.cli."):
            assert "click" not in top and "tui" not in top, f"{me} imports click or the TUI"
    for path in (ROOT / "kerashw" / "store").glob("*.py"):
        store_imports = {n.split(".")[0] for n in _imports(path)}
        assert not store_imports & {"keras", "tensorflow"}, path


def test_the_tui_loads_tensorflow_only_in_its_worker():
    for path in (ROOT / "tui").glob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top_level for a in n.names} | {n.module for n in top_level
                                                                 if isinstance(n, ast.ImportFrom)}
        assert not names & {"kerashw.training.train", "keras", "tensorflow"}, path.name


# The one place outside the task packages that may name a task: config.py's run-id rules
# (the spec's `task` field, each model's task, each task's baseline).
NAMES_ALLOWED_IN = {"kerashw/config.py"}


def test_only_the_task_packages_name_a_task():
    """Code outside kerashw/mnist/ and kerashw/captcha/ asks the run's task (kerashw.tasks)
    and never which task it is: no "mnist" or "captcha" string anywhere else in kerashw/ or tui/."""
    from kerashw.tasks import TASKS

    for path in [*(ROOT / "kerashw").rglob("*.py"), *(ROOT / "tui").rglob("*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        if rel in NAMES_ALLOWED_IN or rel.startswith(tuple(f"kerashw/{t}/" for t in TASKS)):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in TASKS:
                raise AssertionError(f"{rel}:{node.lineno} names the task {node.value!r}; ask the run's task "
                                     "(kerashw.tasks.get(spec.task)) instead")


def test_the_tui_never_imports_the_cli():
    """kerashw.cli opens the TUI (`kerashw tui`, `kerashw-tui`); the TUI importing the CLI back
    was a cycle."""
    for path in (ROOT / "tui").rglob("*.py"):
        assert not any(i == "kerashw.cli" or i.startswith("kerashw.cli.") for i in _imports(path)), path


def test_every_tui_message_lives_in_messages_py_with_a_docstring():
    for path in (ROOT / "tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "Message" for b in node.bases):
                assert path.name == "messages.py", f"{path.name} defines the message {node.name}"
                assert ast.get_docstring(node), f"the message {node.name} has no docstring"
