"""Check that every marked copy still matches the code it was copied from.

The model families do not import each other (one file per family), so where two of them
need the same function, class or method, one holds a copy, marked on the line above it
as diffusers marks its copies::

    # Copied from gankit.models.conditional.ConditionalGAN.configure_optimizers
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        ...

    # Copied from gankit.models.gan.GAN.sample_z with latent_dim->noise_dim, G->decoder
    def sample_z(self, n: int) -> torch.Tensor:
        ...

After ``with``, ``OLD->NEW`` pairs (comma-separated) are replaced in the source's text,
in order, before the comparison. The comparison is of the code: comments, docstrings and
formatting may differ (a copy may explain itself in its own family's words), every name,
value and statement must be the same.

Usage: ``python tools/check_copies.py [PACKAGE_DIR]`` (default ``src/gankit``). It exits 1
naming each copy that drifted from its source, or whose source no longer exists, and 0
when all match. Standard library only; ``make lint`` runs it.
"""

from __future__ import annotations

import ast
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MARK = re.compile(r"^\s*# Copied from (?P<target>[\w.]+)(?:\s+with\s+(?P<replacements>.+?))?\s*$")
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass(frozen=True)
class Copy:
    """A marked copy: where it is, what it copies, and the replacements it declares."""

    path: Path
    line: int
    target: str
    replacements: str


def definitions(tree: ast.AST, prefix: str = "") -> dict[str, Definition]:
    """Every function, class and method of a module by qualified name (``Class.method``)."""
    found: dict[str, Definition] = {}
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, Definition):
            name = f"{prefix}{node.name}"
            found[name] = node
            found.update(definitions(node, f"{name}."))
    return found


def first_line(node: Definition) -> int:
    """The line a definition starts on, its decorators included (1-based)."""
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def parse_replacements(text: str) -> list[tuple[str, str]]:
    """``"a->b, G->decoder"`` -> ``[("a", "b"), ("G", "decoder")]``.

    Raises:
        ValueError: a pair without ``->`` or with nothing before it.
    """
    pairs: list[tuple[str, str]] = []
    if not text:
        return pairs
    for pair in text.split(","):
        old, arrow, new = pair.strip().partition("->")
        if not arrow or not old:
            raise ValueError(f"replacement '{pair.strip()}' is not OLD->NEW")
        pairs.append((old, new))
    return pairs


def normalised(source: str) -> str:
    """The code of one definition, without comments, docstrings or formatting."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, Definition)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def segment(path: Path, node: Definition) -> str:
    """A definition's source text, decorators included, dedented to column 0."""
    lines = path.read_text(encoding="utf-8").splitlines()[first_line(node) - 1 : node.end_lineno]
    indent = len(lines[0]) - len(lines[0].lstrip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def find_marks(path: Path) -> list[Copy]:
    copies = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = MARK.match(text)
        if match:
            copies.append(Copy(path, number, match["target"], match["replacements"] or ""))
    return copies


def resolve(target: str, root: Path) -> tuple[Path, str] | None:
    """``gankit.models.gan.GAN.sample_z`` -> (root/models/gan.py, ``GAN.sample_z``)."""
    parts = target.split(".")
    if parts[0] != root.name:
        return None
    for split in range(len(parts) - 1, 1, -1):
        module = root.joinpath(*parts[1:split]).with_suffix(".py")
        if module.is_file():
            return module, ".".join(parts[split:])
    return None


def marked_definition(copy: Copy) -> Definition | None:
    """The function or class that starts on the first code line below the mark."""
    lines = copy.path.read_text(encoding="utf-8").splitlines()
    below = copy.line + 1
    while below <= len(lines) and (
        not lines[below - 1].strip() or lines[below - 1].lstrip().startswith("#")
    ):
        below += 1
    starts = {first_line(node): node for node in definitions(ast.parse("\n".join(lines))).values()}
    return starts.get(below)


def check(copy: Copy, root: Path) -> str | None:
    """None when ``copy`` matches its source, else what is wrong, in one line and a diff."""
    where = f"{copy.path}:{copy.line}"
    node = marked_definition(copy)
    if node is None:
        return f"{where}: '# Copied from {copy.target}' marks no function or class below it"
    resolved = resolve(copy.target, root)
    source_node = None
    if resolved is not None:
        source_node = definitions(ast.parse(resolved[0].read_text())).get(resolved[1])
    if source_node is None:
        return f"{where}: {node.name} is marked as a copy of {copy.target}, which does not exist"
    try:
        replacements = parse_replacements(copy.replacements)
    except ValueError as error:
        return f"{where}: {node.name}'s mark: {error}"
    expected = segment(resolved[0], source_node)
    for old, new in replacements:
        expected = expected.replace(old, new)
    want, have = normalised(expected), normalised(segment(copy.path, node))
    if want == have:
        return None
    diff = difflib.unified_diff(
        want.splitlines(), have.splitlines(), copy.target, f"{where} {node.name}", lineterm="", n=1
    )
    return f"{where}: {node.name} has drifted from {copy.target}\n" + "\n".join(diff)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "src" / "gankit"
    copies = [copy for path in sorted(root.rglob("*.py")) for copy in find_marks(path)]
    problems = [problem for copy in copies if (problem := check(copy, root)) is not None]
    for problem in problems:
        print(problem)
    if problems:
        print(
            f"check_copies: {len(problems)} of {len(copies)} marked copies differ from their source"
        )
        return 1
    print(f"check_copies: {len(copies)} marked copies match their sources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
