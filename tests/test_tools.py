"""Parser and editor tests on a real LocalEnvironment."""

import pytest

from protege.agent.editor import EditorOptions, editor
from protege.agent.tools import execute, parse_generation, parse_text, tool_schemas, trim_observation
from protege.core.actions import Action, FormatError
from protege.core.protocols import Generation
from protege.env.local import LocalEnvironment


def test_schemas_are_openai_functions():
    names = [t["function"]["name"] for t in tool_schemas()]
    assert names == ["bash", "str_replace_editor", "ask_expert", "submit"]
    assert all(t["type"] == "function" and t["function"]["parameters"]["type"] == "object" for t in tool_schemas())


@pytest.mark.parametrize("text, name, args", [
    ('<tool_call>{"name": "bash", "arguments": {"command": "ls -la"}}</tool_call>', "bash", {"command": "ls -la"}),
    ('think...\n<tool_call>\n{"name": "str_replace_editor", "arguments": {"command": "view", "path": "a.py",'
     ' "view_range": "[1, 5]"}}\n</tool_call>', "str_replace_editor",
     {"command": "view", "path": "a.py", "view_range": [1, 5]}),
    ('<tool_call>{"name": "ask_expert", "arguments": "{\\"question\\": \\"why?\\"}"}</tool_call>', "ask_expert",
     {"question": "why?"}),
    ('<tool_call>\n```json\n{"name": "submit", "arguments": {}}\n```\n</tool_call>', "submit", {}),
    ('<tool_call>{"name": "bash", "arguments": {"command": "ls"}} trailing</tool_call>', "bash", {"command": "ls"}),
    ("Run it:\n```bash\npython -m pytest -q\n```\n", "bash", {"command": "python -m pytest -q"}),
    # a raw newline inside a string (a multi-line new_str written as the model sees it)
    ('<tool_call>{"name": "str_replace_editor", "arguments": {"command": "str_replace", "path": "a.py", '
     '"old_str": "    pass", "new_str": "    if x:\n        y()"}}</tool_call>', "str_replace_editor",
     {"command": "str_replace", "path": "a.py", "old_str": "    pass", "new_str": "    if x:\n        y()"}),
])
def test_parse_valid(text, name, args):
    action = parse_text(text)
    assert isinstance(action, Action), action
    assert (action.name, action.arguments) == (name, args)


@pytest.mark.parametrize("text, fragment", [
    ("I will now fix the bug.", "no tool call"),
    ('<tool_call>{"name": "bash", "arguments": {"command": </tool_call>', "not valid JSON"),
    ('<tool_call>["bash"]</tool_call>', "must be an object"),
    ('<tool_call>{"name": "python", "arguments": {}}</tool_call>', "unknown tool"),
    ('<tool_call>{"name": "bash", "arguments": {"cmd": "ls"}}</tool_call>', "'command'"),
    ('<tool_call>{"name": "str_replace_editor", "arguments": {"command": "delete", "path": "a"}}</tool_call>',
     "must be one of"),
    ('<tool_call>{"name": "str_replace_editor", "arguments": {"command": "insert", "path": "a", "new_str": "x"}}'
     '</tool_call>', "insert_line"),
])
def test_parse_malformed_gives_format_help(text, fragment):
    error = parse_text(text)
    assert isinstance(error, FormatError)
    assert fragment in error.message
    assert "<tool_call>" in error.observation()


def test_structured_tool_calls_win_over_text():
    gen = Generation(text="```bash\nrm -rf /\n```", tool_calls=[
        {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "submit", "arguments": "{}"}}])
    action = parse_generation(gen)
    assert (action.name, action.arguments, action.call_id, action.ignored_calls) == ("bash", {"command": "ls"}, "call_1", 1)


@pytest.fixture
def env(tiny_task, env_config):
    with LocalEnvironment(tiny_task, env_config) as env:
        yield env


def test_editor_view_file_and_range(env):
    out = editor(env, {"command": "view", "path": "tinycalc/ranges.py"})
    assert "     6\t    return list(range(start, stop))" in out
    out = editor(env, {"command": "view", "path": "tinycalc/ranges.py", "view_range": [4, 5]})
    assert "     4\tdef inclusive_range" in out and "     6\t" not in out
    assert editor(env, {"command": "view", "path": "tinycalc/ranges.py", "view_range": [50, 60]}).startswith("Error: invalid view_range")


def test_editor_view_directory_and_missing(env):
    out = editor(env, {"command": "view", "path": "."})
    assert "./tinycalc/ranges.py" in out and ".git" not in out
    assert editor(env, {"command": "view", "path": "nope.py"}) == "Error: The path nope.py does not exist."
    # a near miss is answered with the repository's closest tracked files
    out = editor(env, {"command": "view", "path": "tinycalc/range.py"})
    assert out.startswith("Error: The path tinycalc/range.py does not exist. Similar files: tinycalc/ranges.py")
    out = editor(env, {"command": "str_replace", "path": "src/ranges.py", "old_str": "a", "new_str": "b"})
    assert "Similar files: tinycalc/ranges.py" in out


def test_editor_str_replace(env):
    args = {"command": "str_replace", "path": "tinycalc/ranges.py"}
    out = editor(env, {**args, "old_str": "range(start, stop))", "new_str": "range(start, stop + 1))"})
    assert "has been edited" in out and "stop + 1" in out
    assert "range(start, stop + 1))" in env.read_file("tinycalc/ranges.py")
    assert "did not appear verbatim" in editor(env, {**args, "old_str": "no such text", "new_str": ""})
    out = editor(env, {**args, "old_str": "start", "new_str": "begin"})
    assert "occurs" in out and "unique" in out
    assert "begin" not in env.read_file("tinycalc/ranges.py")
    before = env.read_file("tinycalc/ranges.py")
    same = "    return list(range(start, stop + 1))"  # a copied old_str is not an edit: say so
    assert "new_str is the same as old_str" in editor(env, {**args, "old_str": same, "new_str": same})
    assert env.read_file("tinycalc/ranges.py") == before
    assert "+    return list(range(start, stop + 1))" in env.diff()


def test_editor_create_and_insert(env):
    assert editor(env, {"command": "create", "path": "pkg/new.py", "file_text": "a = 1\n"}) == "File created at pkg/new.py."
    assert "already exists" in editor(env, {"command": "create", "path": "pkg/new.py", "file_text": "x"})
    out = editor(env, {"command": "insert", "path": "pkg/new.py", "insert_line": 0, "new_str": "# header"})
    assert env.read_file("pkg/new.py") == "# header\na = 1\n" and "has been edited" in out
    editor(env, {"command": "insert", "path": "pkg/new.py", "insert_line": 2, "new_str": "b = 2\n"})
    assert env.read_file("pkg/new.py") == "# header\na = 1\nb = 2\n"
    assert "invalid insert_line" in editor(env, {"command": "insert", "path": "pkg/new.py", "insert_line": 9, "new_str": "x"})


def test_editor_refuses_paths_outside_repo(env):
    assert "outside the repository" in editor(env, {"command": "view", "path": "../../etc/passwd"})


def test_execute_bash(env):
    out = execute(env, Action("bash", {"command": "echo hi && exit 3"}))
    assert out.startswith("hi") and "[exit code 3]" in out


def test_execute_refuses_interactive_programs_at_once(env):
    """An editor waits for a terminal the sandbox lacks: refused without running, the file untouched."""
    import time

    before = env.read_file("tinycalc/ranges.py")
    for command in ("vim tinycalc/ranges.py", "cd tinycalc && TERM=dumb vi ranges.py", "echo ok\nview tinycalc/ranges.py",
                    "tail -f tests/test_ranges.py"):
        start = time.monotonic()
        out = execute(env, Action("bash", {"command": command}), timeout_s=30)
        assert time.monotonic() - start < 1 and "needs an interactive terminal" in out and "str_replace_editor" in out
    assert env.read_file("tinycalc/ranges.py") == before
    # The names as arguments are ordinary commands.
    assert execute(env, Action("bash", {"command": "echo vim view && grep -c def tinycalc/ranges.py"})) == "vim view\n2"


def test_editor_view_window_and_indent_tolerant_replace(env):
    path = "tinycalc/ranges.py"
    windowed = editor(env, {"command": "view", "path": path}, EditorOptions(view_window=3))
    assert "     3\t" in windowed and "     4\t" not in windowed and "use view_range" in windowed
    args = {"command": "str_replace", "path": path, "old_str": "return list(range(start, stop))",
            "new_str": "return list(range(start, stop + 1))"}
    strict = editor(env, {**args, "old_str": "      return list(range(start, stop))"})  # wrong indentation
    assert strict.startswith("Error: No replacement") and "whitespace differs" in strict and "line 6" in strict
    out = editor(env, {**args, "old_str": "\treturn list(range(start, stop))"}, EditorOptions(indent_tolerant=True))
    assert "matched only when indentation is ignored" in out
    assert "\n    return list(range(start, stop + 1))\n" in env.read_file(path)  # the file's indentation kept
    near = editor(env, {**args, "old_str": "return list(range(begin, stop + 1))"})
    assert "closest line is 6" in near


def test_trim_observation_keeps_head_and_tail():
    text = "head\n" + "x" * 5000 + "\nFAILED tests/test_a.py::test_b - assert 1 == 2\n1 failed"
    out = trim_observation(text, 600)
    assert len(out) < 700 and out.startswith("head") and out.endswith("1 failed") and "characters left out" in out
    assert trim_observation("short", 600) == "short" and trim_observation(text, -1) == text
