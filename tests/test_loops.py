"""Loop rules (METHOD.md) on realistic action sequences."""

from protege.core.loop_detection import (
    base_command,
    has_long_run,
    loop_heuristic_fires,
    loop_penalty_paper,
    repeats_in_window,
    run_lengths,
)


def test_base_command_rules():
    assert base_command("FOO=1 BAR=2 pytest -x") == "pytest"
    assert base_command("cd src; ls -la") == "ls"
    assert base_command("git status && git log --oneline") == "git log"
    assert base_command("python -m pytest tests") == base_command("python -m pytest -x other") == "python -m pytest"
    assert base_command("python reproduce.py") == "python"
    assert base_command("echo 'a && b; c'") == "echo"
    assert base_command("grep -n x f") == base_command("find . -name y") == base_command("str_replace_editor view a") == "search"
    assert base_command("cat 'unbalanced") == "cat"


def test_search_variants_form_one_run():
    actions = ["grep -rn foo .", "find . -name '*.py'", "str_replace_editor view a.py", "cd x && grep y z"]
    assert run_lengths(actions) == [4]


def test_paper_penalty_thresholds():
    assert loop_penalty_paper(run_lengths(["pytest"] * 14)) == 0.0
    assert loop_penalty_paper(run_lengths(["pytest"] * 15)) == -0.5
    # second-longest runs use the tighter k2 = 8
    assert loop_penalty_paper([15, 8]) == -1.0
    assert loop_penalty_paper([100]) == -10.0


def test_window_and_long_run():
    assert repeats_in_window(["ls"] * 6) == 5
    assert repeats_in_window(["a", "b", "c", "d", "e", "f", "a"]) == 0  # outside the 5-step window
    assert has_long_run(["cat a"] * 6 + ["cat b"] * 5)
    assert not has_long_run(["cat a", "ls"] * 10)


def test_loop_heuristic():
    assert not loop_heuristic_fires([])
    assert loop_heuristic_fires(["pytest", "cat a", "pytest"])
    assert not loop_heuristic_fires(["pytest", "a", "b", "c", "d", "e", "pytest"])
