"""A deterministic AST-level bug injector in the spirit of SWE-smith.

`find_sites(source)` lists every place a mutation of a known kind can be made; `apply(source,
site)` returns the mutated source. Edits are made on the source text at the node's exact
position, so the rest of the file (comments, formatting) is untouched and the gold patch is
a one- or two-line diff.

>>> src = "def f(xs, n):\\n    if n < 0:\\n        return []\\n    return [x + 1 for x in xs[:n]]\\n"
>>> sorted({s.kind for s in find_sites(src)})
['arith_flip', 'compare_flip', 'drop_guard', 'off_by_one', 'wrong_constant']
>>> site = next(s for s in find_sites(src) if s.kind == "compare_flip")
>>> print(apply(src, site).splitlines()[1])
    if n <= 0:
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

KINDS = ("compare_flip", "arith_flip", "off_by_one", "swap_args", "wrong_constant",
         "drop_guard", "bool_flip", "drop_operand")

_CMP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
_ARITH = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "+"), ast.FloorDiv: ("//", "/"),
          ast.Mod: ("%", "//"), ast.Div: ("/", "*")}
_BOOL = {ast.And: ("and", "or"), ast.Or: ("or", "and")}


@dataclass(frozen=True)
class Edit:
    """Replace the text between two (line, byte column) positions, 1-based lines."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


@dataclass(frozen=True)
class Site:
    kind: str
    line: int  # 1-based line of the mutation
    function: str  # enclosing function ("<module>" at top level)
    description: str  # e.g. "'<' -> '<='": for the instance metadata, never the issue text
    edits: tuple[Edit, ...]

    @property
    def key(self) -> str:
        return f"{self.kind}@{self.line}:{self.edits[0].start[1]}"


def _seg(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    return (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)


def _text(lines: list[bytes], start: tuple[int, int], end: tuple[int, int]) -> str:
    if start[0] == end[0]:
        return lines[start[0] - 1][start[1]:end[1]].decode()
    parts = [lines[start[0] - 1][start[1]:]] + lines[start[0]:end[0] - 1] + [lines[end[0] - 1][:end[1]]]
    return b"".join(parts).decode()


def _op_edit(lines: list[bytes], left: ast.AST, right: ast.AST, old: str, new: str) -> Edit | None:
    """The operator token between two operands (skipping parentheses and spaces)."""
    start, end = (left.end_lineno, left.end_col_offset), (right.lineno, right.col_offset)
    between = _text(lines, start, end)
    idx = _find_token(between, old)
    if idx < 0 or start[0] != end[0]:
        return None
    col = start[1] + len(between[:idx].encode())
    return Edit((start[0], col), (start[0], col + len(old.encode())), new)


def _find_token(text: str, token: str) -> int:
    """Index of `token` standing alone (so '<' is not found inside '<=')."""
    i = text.find(token)
    while i >= 0:
        before = text[i - 1] if i > 0 else " "
        after = text[i + len(token)] if i + len(token) < len(text) else " "
        if token.isalpha():
            ok = not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_")
        else:
            ok = before not in "<>=!/*" and after not in "<>=/*"
        if ok:
            return i
        i = text.find(token, i + 1)
    return -1


def _is_simple(node: ast.AST) -> bool:
    return isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant))


def _plus(lines: list[bytes], node: ast.AST, delta: int) -> Edit:
    start, end = _seg(node)
    src = _text(lines, start, end)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return Edit(start, end, str(node.value + delta))
    src = src if _is_simple(node) else f"({src})"
    return Edit(start, end, f"{src} {'+' if delta > 0 else '-'} {abs(delta)}")


class _Finder(ast.NodeVisitor):
    def __init__(self, source: str):
        self.lines = source.encode().splitlines(keepends=True)
        self.sites: list[Site] = []
        self.func = "<module>"
        self.docstrings: set[int] = set()

    def add(self, kind: str, node: ast.AST, description: str, *edits: Edit | None) -> None:
        if edits and all(e is not None for e in edits):
            self.sites.append(Site(kind, node.lineno, self.func, description, tuple(edits)))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        outer, self.func = self.func, node.name
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self.docstrings.add(id(body[0].value))
        for default in node.args.defaults + node.args.kw_defaults:  # defaults are API, not logic
            if default is not None:
                self.docstrings.add(id(default))
        self.generic_visit(node)
        self.func = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Compare(self, node: ast.Compare) -> None:
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            if type(op) in _CMP:
                old, new = _CMP[type(op)]
                self.add("compare_flip", node, f"{old!r} -> {new!r}", _op_edit(self.lines, left, right, old, new))
            left = right
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        strings = [x for x in (node.left, node.right) if isinstance(x, ast.JoinedStr)
                   or (isinstance(x, ast.Constant) and isinstance(x.value, str))]
        if type(node.op) in _ARITH and not strings:
            old, new = _ARITH[type(node.op)]
            self.add("arith_flip", node, f"{old!r} -> {new!r}", _op_edit(self.lines, node.left, node.right, old, new))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        old, new = _BOOL[type(node.op)]
        self.add("bool_flip", node, f"{old!r} -> {new!r}",
                 _op_edit(self.lines, node.values[0], node.values[1], old, new))
        if len(node.values) == 2:
            start, end = _seg(node)
            keep = _text(self.lines, *_seg(node.values[0]))
            self.add("drop_operand", node, f"dropped `{old} ...` operand", Edit(start, end, keep))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "range" and node.args and not node.keywords:
            bound = node.args[1] if len(node.args) >= 2 else node.args[0]
            delta = -1 if (node.lineno + node.col_offset) % 2 else 1
            self.add("off_by_one", node, f"range bound {'+' if delta > 0 else '-'}1", _plus(self.lines, bound, delta))
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        if (len(positional) >= 2 and len(positional) == len(node.args) and name not in {"range", "isinstance", "getattr", "setattr", "print", "round", "divmod", "pow"}
                and not any(isinstance(a, ast.Constant) for a in positional[:2])
                and _text(self.lines, *_seg(positional[0])) != _text(self.lines, *_seg(positional[1]))):
            a, b = positional[0], positional[1]
            ta, tb = _text(self.lines, *_seg(a)), _text(self.lines, *_seg(b))
            if a.end_lineno == b.lineno == a.lineno:
                # one edit spanning both arguments keeps the separator as written
                sep = _text(self.lines, (a.end_lineno, a.end_col_offset), (b.lineno, b.col_offset))
                self.add("swap_args", node, f"swapped arguments {ta!r} and {tb!r}",
                         Edit((a.lineno, a.col_offset), (b.end_lineno, b.end_col_offset), tb + sep + ta))
        self.generic_visit(node)

    def visit_Slice(self, node: ast.Slice) -> None:
        if node.step is None:
            target, delta = (node.upper, 1) if node.upper is not None else (node.lower, 1)
            if target is not None:
                self.add("off_by_one", target, f"slice bound +{delta}", _plus(self.lines, target, delta))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if id(node) in self.docstrings or isinstance(value, bool) or not isinstance(value, int | float):
            return
        new = {0: 1, 1: 0}.get(value, value + 1) if isinstance(value, int) else value * 2 if value else 1.0
        self.add("wrong_constant", node, f"{value!r} -> {new!r}", Edit(*_seg(node), repr(new)))

    def visit_If(self, node: ast.If) -> None:
        body = node.body
        if (len(body) == 1 and isinstance(body[0], ast.Return | ast.Raise | ast.Continue | ast.Break)
                and not node.orelse and self.func != "<module>"):
            first = self.lines[node.lineno - 1]
            indent = first[:len(first) - len(first.lstrip())].decode()
            # the guard's lines become a bare `pass`, keeping the block valid and the diff small
            last_len = len(self.lines[node.end_lineno - 1].rstrip(b"\r\n"))
            self.add("drop_guard", node, "removed guard clause",
                     Edit((node.lineno, 0), (node.end_lineno, last_len), indent + "pass"))
        self.generic_visit(node)


def find_sites(source: str) -> list[Site]:
    """Every mutation site in `source`, in source order (deterministic)."""
    finder = _Finder(source)
    finder.visit(ast.parse(source))
    seen, sites = set(), []
    for site in sorted(finder.sites, key=lambda s: (s.edits[0].start, s.kind)):
        if site.key not in seen:
            seen.add(site.key)
            sites.append(site)
    return sites


def apply(source: str, site: Site) -> str:
    """The source with the site's edits made (right to left so positions stay valid)."""
    lines = source.encode().splitlines(keepends=True)
    for edit in sorted(site.edits, key=lambda e: e.start, reverse=True):
        (l1, c1), (l2, c2) = edit.start, edit.end
        head, tail = lines[l1 - 1][:c1], lines[l2 - 1][c2:]
        lines[l1 - 1:l2] = [head + edit.text.encode() + tail]
    mutated = b"".join(lines).decode()
    ast.parse(mutated)  # a mutation must still be valid Python
    return mutated
