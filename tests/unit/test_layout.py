"""The package layout: a framework-neutral engine, two faces, a repository that stands on its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BLOCK = """
import sys
BLOCKED = {blocked!r}
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'{{name}} is blocked in this test')
sys.meta_path.insert(0, _Block())
"""

ENGINE_RUN = """
import hashlib, math, pkgutil, importlib, tempfile
import storinfer
for mod in pkgutil.walk_packages(storinfer.__path__, "storinfer."):
    importlib.import_module(mod.name)

class WordEmbedder:  # a tiny embedder: hashed words, L2-normalised
    def embed_documents(self, texts):
        return [self.embed_query(t) for t in texts]
    def embed_query(self, text):
        v = [0.0] * 64
        for w in text.lower().replace("?", " ").split():
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v]

class Scripted:  # a ChatModel that writes fixed questions and answers
    def chat_batch(self, conversations, **settings):
        return ["1. Who won Super Bowl 50?\\n2. Where was Super Bowl 50 played?" if "Write" in c[-1]["content"]
                else "The Denver Broncos." for c in conversations]

with tempfile.TemporaryDirectory() as tmp:
    store = storinfer.QAStore(tmp, embedding=WordEmbedder())
    pre = storinfer.Precomputer(store, llm=Scripted(), config=storinfer.GenerationConfig(max_calls_per_chunk=1, min_relevance=0.0))
    summary = pre.run([storinfer.Document("Super Bowl 50 was won by the Denver Broncos at Levi's Stadium.", id="sb")],
                      progress=False)
    assert summary.accepted == 2 and summary.fact_accepted >= 1, summary  # both generators ran
    found = storinfer.StoreFront(store).answer("Who won Super Bowl 50?", lambda q: "unused")
    assert found[0] == "The Denver Broncos." and found[1].reason == "exact", found
    store.close()
leaked = sorted(m for m in sys.modules if m.split('.')[0] in ("langchain_core", "llama_index", "storinfer_langchain",
                                                                   "storinfer_llamaindex"))
assert not leaked, leaked
print("engine ok")
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(REPO),
                          env={"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


def test_engine_runs_with_langchain_and_llamaindex_blocked():
    blocked = ("langchain", "langchain_core", "langchain_text_splitters", "langchain_huggingface", "llama_index")
    out = _run(BLOCK.format(blocked=blocked) + ENGINE_RUN)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "engine ok" in out.stdout


@pytest.mark.parametrize(("face", "missing", "extra"), [("storinfer_langchain", "langchain_core", "langchain"),
                                                        ("storinfer_llamaindex", "llama_index", "llamaindex")])
def test_a_face_without_its_extra_names_the_install(face, missing, extra):
    out = _run(BLOCK.format(blocked=(missing,)) + f"import {face}")
    assert out.returncode != 0
    assert "MissingExtraError" in out.stderr and f"pip install 'storinfer[{extra}]'" in out.stderr


def test_llamaindex_face_imports_no_langchain():
    out = _run(BLOCK.format(blocked=("langchain", "langchain_core")) + "import storinfer_llamaindex; print('ok')")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


# --- the folders show the flow; no import circle; small modules ----------------------------------
ENGINE = REPO / "storinfer"
ARCHITECTURE = REPO / "docs" / "architecture.md"
FLOW = re.compile(r"\w+(?: -> \w+){3,}")  # documents -> generate -> ... -> serve


def documented_tree() -> set[str]:
    """The engine's folders and modules as docs/architecture.md draws them: ``match``, ``match/verify.py``.

    The tree is the block under the line ``storinfer/``, two spaces per level, each line a name (a
    folder ends in ``/``; ``a.py, b.py`` names two) and then, after two spaces or more, what it holds."""
    lines = ARCHITECTURE.read_text().splitlines()
    out: set[str] = set()
    folders: list[str] = []
    for line in lines[lines.index("storinfer/") + 1:]:
        if not line.startswith("  "):
            break
        depth = (len(line) - len(line.lstrip())) // 2
        del folders[depth - 1:]
        for name in re.split(r"\s{2,}", line.strip())[0].split(", "):
            out.add("/".join([*folders, name.rstrip("/")]))
            if name.endswith("/"):
                folders.append(name.rstrip("/"))
    return out


def engine_tree() -> set[str]:
    """The engine's folders and modules on disk, as :func:`documented_tree` names them."""
    paths = [p for p in ENGINE.rglob("*") if "__pycache__" not in p.parts and p.name != "__init__.py"]
    return {str(p.relative_to(ENGINE)) for p in paths if p.is_dir() or p.suffix == ".py"}


def test_the_architecture_doc_draws_every_engine_module_and_no_other():
    drawn, there = documented_tree(), engine_tree()
    assert {"match", "match/verify.py", "cli.py", "precompute/generate/free.py"} <= drawn  # the parser reads the tree
    assert drawn - there == set(), "docs/architecture.md draws modules that are not there"
    leaves = {d for d in drawn & {p for p in there if (ENGINE / p).is_dir()} if not any(x.startswith(d + "/") for x in drawn)}
    undrawn = {p for p in there - drawn if not any(p.startswith(leaf + "/") for leaf in leaves)}  # a folder drawn alone covers its files
    assert not undrawn, f"add these to the tree in docs/architecture.md: {sorted(undrawn)}"


def test_each_step_of_the_flow_has_its_place():
    """The flow the README and the architecture doc draw is the engine's folders: each step a module or folder."""
    flows = {path.name: FLOW.findall(path.read_text()) for path in (ARCHITECTURE, REPO / "README.md")}
    assert flows["architecture.md"] and set(flows["README.md"]) == set(flows["architecture.md"]), flows
    steps = flows["architecture.md"][0].split(" -> ")
    places = {Path(p).stem: p for p in documented_tree()}
    assert len(steps) >= 6 and not [s for s in steps if s not in places], (steps, sorted(places))


def _modules() -> dict[str, Path]:
    out = {}
    for path in ENGINE.rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the engine modules it imports, anywhere in its body (lazy imports count)."""
    import ast

    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != "storinfer" and t != name:  # every import passes the root package; not a circle
                    graph[name].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

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
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_between_engine_modules():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the finder finds one
    assert _cycles(import_graph()) == []


def test_lower_folders_never_import_higher_ones():
    """models and match import no store; the store imports no match (it stores: a lookup goes front ->
    match -> store once), precompute, serve or evaluate."""
    graph = import_graph()
    forbidden = {"storinfer.models": ("storinfer.store", "storinfer.match", "storinfer.precompute", "storinfer.serve",
                                      "storinfer.evaluate"),
                 "storinfer.match": ("storinfer.store", "storinfer.serve", "storinfer.evaluate"),
                 "storinfer.store": ("storinfer.match", "storinfer.precompute", "storinfer.serve", "storinfer.evaluate"),
                 "storinfer.serve": ("storinfer.precompute", "storinfer.evaluate")}
    bad = _forbidden_in(graph, forbidden)
    assert not bad, bad
    assert _forbidden_in({"storinfer.store.qastore": {"storinfer.match.lookup"}}, forbidden) == [
        "storinfer.store.qastore -> storinfer.match.lookup"]  # the check finds one


def test_the_engine_imports_no_face_but_in_the_cli():
    """The faces sit on the engine, not under it: only the CLI's --llm option reaches for a face's
    model adapter (lazily)."""
    import ast

    found = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{path.relative_to(REPO)}: {n}" for n in names
                      if n.split(".")[0] in ("storinfer_langchain", "storinfer_llamaindex")]
    assert found and all(f.startswith("storinfer/cli.py: ") for f in found), found


def _forbidden_in(graph: dict[str, set[str]], forbidden: dict[str, tuple[str, ...]]) -> list[str]:
    return [f"{m} -> {t}" for m, targets in graph.items() for low, high in forbidden.items()
            if m == low or m.startswith(low + ".") for t in targets if t.startswith(high)]


def test_no_module_is_much_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in [*ENGINE.rglob("*.py"), *(REPO / "storinfer_langchain").glob("*.py"),
                                                   *(REPO / "storinfer_llamaindex").glob("*.py")]
            if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long


def test_no_compatibility_layer():
    """There is no released 0.3 to keep: no alias module, no engine module importing one."""
    assert not (ENGINE / "_compat.py").exists()
    graph = import_graph()
    assert not [m for m, targets in graph.items() if any("_compat" in t for t in targets)]
    source = "\n".join(p.read_text() for p in [*ENGINE.rglob("*.py"), *(REPO / "storinfer_langchain").glob("*.py"),
                                                *(REPO / "storinfer_llamaindex").glob("*.py")])
    for old in ("_compat", "DEFAULT_THRESHOLD", "LocalChatHuggingFace", "cache_runtime_answers", "cache_misses",
                "store_misses_option", "judge_band", "JudgeBand", "sys.modules.setdefault"):
        assert old not in source, old


FACES = {"storinfer_langchain.StorInferCache": 8, "storinfer_langchain.StorInferChain": 8,
         "storinfer_llamaindex.StorInferQueryEngine": 10, "storinfer.StoreFront": 10}


def parameters(path: str) -> list[str]:
    import importlib
    import inspect

    module, name = path.rsplit(".", 1)
    return [p for p in inspect.signature(getattr(importlib.import_module(module), name).__init__).parameters if p != "self"]


@pytest.mark.parametrize(("face", "most"), FACES.items())
def test_each_face_fits_on_one_screen(face, most):
    names = parameters(face)
    assert len(names) <= most, (face, names)
    assert not {"similarity_threshold", "guard", "verifier", "explore_rate", "answer_judge", "judge", "seed",
                "decision_options", "host", "port", "path"} & set(names), names
    if face != "storinfer.StoreFront":
        assert {"store", "namespace", "max_wrong_rate", "policy", "learner", "store_misses", "ttl_seconds"} <= set(names)


def test_every_face_has_its_count():
    """A face is a public class of the engine or a face package that takes a store and a max_wrong_rate."""
    import importlib
    import inspect

    found = set()
    for package in ("storinfer", "storinfer_langchain", "storinfer_llamaindex"):
        module = importlib.import_module(package)
        for name in module.__all__:
            if inspect.isclass(obj := getattr(module, name)) and {"store", "max_wrong_rate"} <= set(parameters(f"{package}.{name}")):
                found.add(f"{obj.__module__.split('.')[0]}.{name}")
    assert found == set(FACES), found


def test_one_version_everywhere():
    import tomllib

    import storinfer
    import storinfer_langchain

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert storinfer.__version__ == storinfer_langchain.__version__ == version


# --- a fresh clone stands on its own ---------------------------------------------------------
_CODE = {".py", ".ipynb", ".cfg", ".toml", ".sh", ""}
_OUTSIDE = re.compile(r"""\.\./shared|shared/data|["']shared["']|REPO\.parent\b""")


def test_nothing_in_the_repository_reads_outside_it():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = REPO / name
        if path.suffix not in _CODE or name.startswith("data/") or not path.is_file() or path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".ipynb":
            text = "".join("".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "code")
        offenders += [f"{name}: {m.group(0)}" for m in _OUTSIDE.finditer(text)]
    assert not offenders, offenders


def test_the_data_ships_with_its_licence():
    """Each folder of data/ has its row in data/README.md's table, ending with the licence it ships under."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in (REPO / "data" / "README.md").read_text().splitlines()
            if line.startswith("| `")]
    licences = {row[0].strip("`").split("/")[0]: row[-1] for row in rows}
    folders = sorted(p.name for p in (REPO / "data").iterdir() if p.is_dir())
    assert folders, "data/ ships no data set"
    unlicensed = [f for f in folders if not re.fullmatch(r"CC BY(-SA)? \d\.\d", licences.get(f, ""))]
    assert not unlicensed, f"give each a row in data/README.md's table, ending with its licence: {unlicensed}"


# --- the splitter ---------------------------------------------------------------------------------
def test_splitter_cuts_as_langchains_did():
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from storinfer.precompute.documents import TextSplitter

    article = json.loads((REPO / "data/squad-dev-v1.1-superbowl/dev-v1.1-superbowl.json").read_text())["data"][0]
    texts = [p["context"] for p in article["paragraphs"]]
    texts += ["\n\n".join(texts[i : i + 6]) for i in range(0, len(texts), 6)] + ["word " * 400, "x" * 2500, ""]
    for size, overlap in ((1000, 100), (300, 50), (120, 0)):
        ours, theirs = TextSplitter(size, overlap), RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap)
        for t in texts:
            assert ours.split_text(t) == theirs.split_text(t)
    with pytest.raises(ValueError, match="chunk_overlap"):
        TextSplitter(100, 100)
