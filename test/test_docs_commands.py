"""What README.md and docs/*.md point at exists: make targets, `python -m` modules, links.

Fast and without ROS: the documents are read as text, modules are looked up with
``importlib.util.find_spec`` (parent packages are imported, nothing else), the Makefile is parsed
for its rule names.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
MODULE_ROOTS = ("glimpse_ros", "training")  # this repository's packages

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+([A-Za-z][\w.-]*)")
PYTHON_M = re.compile(r"(?:^|[\s`(])(?:[\w.~/-]*/)?python[\d.]*\s+-m\s+([\w.]+)(<)?")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def code_parts(text: str) -> list[str]:
    """Fenced blocks and inline code spans (where commands are written)."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    return blocks + INLINE_CODE.findall(prose)


def prose_only(text: str) -> str:
    """The text without fenced blocks and inline code (where links are written)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def makefile_targets() -> set[str]:
    """Rule names of the Makefile (``name:`` at the start of a line, not ``name :=``)."""
    text = (REPO / "Makefile").read_text()
    targets = set()
    for match in re.finditer(r"^([A-Za-z][\w.-]*(?:[ \t]+[A-Za-z][\w.-]*)*)[ \t]*:(?!=)", text,
                             re.M):
        targets.update(match.group(1).split())
    return targets


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Anchors of a markdown file's headings (duplicates numbered as GitHub does)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        slug = github_anchor(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def mentions() -> tuple[list, list, list]:
    """(doc, make target), (doc, module), (doc, link) for every document."""
    makes, modules, links = [], [], []
    for doc in DOCS:
        text = doc.read_text()
        for part in code_parts(text):
            makes += [(doc, t) for t in MAKE.findall(part)]
        for name, placeholder in PYTHON_M.findall(text):
            name = name.rstrip(".")
            if not placeholder and name.split(".")[0] in MODULE_ROOTS:
                modules.append((doc, name))
        links += [(doc, target) for target in LINK.findall(prose_only(text))]
    dedup = lambda items: sorted(set(items), key=lambda i: (rel(i[0]), i[1]))  # noqa: E731
    return dedup(makes), dedup(modules), dedup(links)


MAKES, MODULES, LINKS = mentions()


def ids(items: list) -> list[str]:
    return [f"{rel(doc)}:{item}" for doc, item in items]


def test_documents_are_scanned() -> None:
    """The scan finds what the README is known to mention (a broken regex would pass vacuously)."""
    readme = REPO / "README.md"
    assert (readme, "demo") in MAKES and (readme, "test") in MAKES
    assert (readme, "glimpse_ros.recognizer") in MODULES
    assert any(doc == readme and target.startswith("docs/") for doc, target in LINKS)


@pytest.mark.parametrize(("doc", "target"), MAKES, ids=ids(MAKES))
def test_make_target_exists(doc: Path, target: str) -> None:
    """Every ``make <target>`` in the documents is a rule of the Makefile."""
    assert target in makefile_targets(), f"{rel(doc)} mentions `make {target}`: no such target"


@pytest.mark.parametrize(("doc", "module"), MODULES, ids=ids(MODULES))
def test_python_m_module_exists(doc: Path, module: str) -> None:
    """Every ``python -m <module>`` of this repository in the documents can be run."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a parent package is missing
        spec = None
    assert spec is not None, f"{rel(doc)} mentions `python -m {module}`: no such module"
    if spec.submodule_search_locations is not None:  # a package runs its __main__
        main = importlib.util.find_spec(module + ".__main__")
        assert main is not None, f"{rel(doc)}: `python -m {module}`: package without __main__"
        spec = main
    origin = Path(spec.origin).resolve()
    assert REPO in origin.parents, f"{module} found outside this checkout: {origin}"


@pytest.mark.parametrize(("doc", "target"), LINKS, ids=ids(LINKS))
def test_relative_link_resolves(doc: Path, target: str) -> None:
    """Every relative link points to an existing file (and, into markdown, to a heading)."""
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return
    path_part, _, fragment = target.partition("#")
    path = (doc.parent / path_part).resolve() if path_part else doc
    assert path.exists(), f"{rel(doc)} links to {target}: {path_part} does not exist"
    if fragment and path.suffix == ".md":
        assert fragment in anchors(path), (
            f"{rel(doc)} links to {target}: no heading '#{fragment}' in {rel(path)}")
