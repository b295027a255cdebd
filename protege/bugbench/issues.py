"""The issue text of a bundled instance, written from what its failing test observed (the call,
the actual and the expected value; never the fix), at one of three reveal levels."""

from __future__ import annotations

import ast
import random
import re
from pathlib import Path

_APPROX = re.compile(r"^pytest\.approx\((.*)\)$", re.S)


def _statement_at(lines: list[str], index: int, max_lines: int = 12) -> str:
    """The whole (possibly multi-line) statement starting at 0-based `index`."""
    for end in range(index + 1, min(len(lines), index + max_lines) + 1):
        text = "\n".join(ln.strip() for ln in lines[index:end])
        try:
            ast.parse(text)
            return text
        except SyntaxError:
            continue
    return lines[index].strip() if index < len(lines) else ""


def _observation(line: str, crash: str, next_line: str = "") -> dict[str, str] | None:
    """From the failing test line (and the one after it, for `with pytest.raises`) and
    pytest's crash message: call, got, expected."""
    first = crash.splitlines()[0] if crash else ""
    # pytest reports a failed assert as "AssertionError: assert X == Y" or plain "assert X == Y"
    shown = first.removeprefix("AssertionError: ")
    failed_check = first.startswith("AssertionError") or shown.startswith("assert ")
    if first.startswith("Failed: DID NOT RAISE"):
        match = re.search(r"pytest\.raises\(\s*([\w.]+)", line)
        exc = match.group(1) if match else first.split("<class '")[-1].rstrip("'>")
        try:
            body = ast.parse(next_line.strip()).body[0]
        except (SyntaxError, IndexError):
            return None
        call = ast.unparse(body.value if isinstance(body, ast.Expr | ast.Assign) else body)
        return {"call": call, "got": "returns normally", "expected": f"raises `{exc}`", "kind": "no_raise"}
    try:
        stmt = ast.parse(line.strip()).body[0]
    except (SyntaxError, IndexError):
        stmt = None
    if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
        stmt = ast.Expr(stmt.value)  # `x = f(...)` that raised: the call is what matters
    if isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Compare) and len(stmt.test.ops) == 1 \
            and isinstance(stmt.test.ops[0], ast.Eq):
        left, right = ast.unparse(stmt.test.left), ast.unparse(stmt.test.comparators[0])
        right = _APPROX.sub(r"\1", right)
        right_plain = re.sub(r",\s*(abs|rel)=[^,)]*", "", right)
        if shown.startswith("assert "):
            shown = shown[len("assert "):]
            got = shown.rsplit(" == ", 1)[0] if " == " in shown else shown
            return {"call": left, "got": got, "expected": right_plain, "kind": "wrong_value"}
        if first.startswith("AssertionError"):
            return None
        return {"call": left, "got": f"raises `{first}`", "expected": right_plain, "kind": "raises"}
    if isinstance(stmt, ast.Assert):
        expr = ast.unparse(stmt.test)
        if failed_check:
            return {"call": expr, "got": "False", "expected": "True", "kind": "wrong_value"}
        return {"call": expr, "got": f"raises `{first}`", "expected": "True", "kind": "raises"}
    if stmt is not None and first and not failed_check:
        return {"call": ast.unparse(stmt.value if isinstance(stmt, ast.Expr) else stmt),
                "got": f"raises `{first}`", "expected": "no exception", "kind": "raises"}
    return None


def _called_name(call: str) -> str:
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return call.split("(")[0]
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "the function")
    return "the function"


def _test_context(pkg_dir: Path, nodeid: str, lineno: int | None) -> tuple[str, str, list[str]]:
    """(package imports, setup lines before the failing line, source of the test function)."""
    path, _, name = nodeid.partition("::")
    tree = ast.parse((pkg_dir / path).read_text())
    src_lines = (pkg_dir / path).read_text().splitlines()
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)
               and n.module and n.module.split(".")[0] == pkg_dir.name]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name.split("[")[0]:
            body = src_lines[node.body[0].lineno - 1: node.end_lineno]
            setup = []
            if lineno is not None:
                for ln in src_lines[node.body[0].lineno - 1: lineno - 1]:
                    if ln.strip() and not ln.strip().startswith("#"):
                        setup.append(ln[4:] if ln.startswith("    ") else ln.strip())
            used = "\n".join(body)
            return _used_imports(imports, used), "\n".join(setup), body
    return _used_imports(imports, ""), "", []


def _used_imports(imports: list[ast.ImportFrom], code: str) -> str:
    """Only the names the snippet uses, so the issue's repro stays short."""
    lines = []
    for node in imports:
        names = [a for a in node.names if re.search(rf"\b{re.escape(a.asname or a.name)}\b", code)]
        if names:
            lines.append(ast.unparse(ast.ImportFrom(module=node.module, names=names, level=0)))
    return "\n".join(lines)


_OPENERS = ["I'm using `{pkg}` and ran into a problem with `{name}`.",
            "`{name}` in `{pkg}` does not behave as documented.",
            "While using `{pkg}` I noticed that `{name}` gives a wrong answer.",
            "There seems to be a bug in `{pkg}`: `{name}` misbehaves."]


def write_statement(pkg: str, obs: dict[str, str], imports: str, setup: str, test_id: str,
                    reveal: int, rng: random.Random) -> str:
    """The issue text at a reveal level: 0 = repro, values and failing test; 1 = repro and
    values; 2 = only which function misbehaves and how (no values)."""
    name = _called_name(obs["call"])
    if obs["kind"] == "no_raise":
        title = f"`{name}` does not raise for invalid input"
    elif obs["kind"] == "raises":
        title = f"`{name}` raises an unexpected error"
    else:
        title = f"`{name}` returns a wrong result"
    opener = rng.choice(_OPENERS).format(pkg=pkg, name=name)
    if reveal >= 2:
        symptom = {"no_raise": "accepts input it should reject instead of raising an error",
                   "raises": "fails with an exception on input it should handle",
                   "wrong_value": "returns incorrect values for some inputs"}[obs["kind"]]
        return f"{title}\n\n{opener} It {symptom}. Other parts of the library seem fine.\n"
    code = "\n".join(x for x in (imports, setup) if x)
    shown = f"print({obs['call']})"
    repro = f"```python\n{code}\n{shown}\n```" if code else f"```python\n{shown}\n```"
    text = (f"{title}\n\n{opener}\n\nTo reproduce:\n\n{repro}\n\n"
            f"Actual: {obs['got'] if obs['got'].startswith(('raises', 'returns')) else '`' + obs['got'] + '`'}\n"
            f"Expected: {obs['expected'] if obs['expected'].startswith(('raises', 'no ')) else '`' + obs['expected'] + '`'}\n")
    if reveal == 0:
        text += f"\nThe test `{test_id}` fails because of this.\n"
    return text
