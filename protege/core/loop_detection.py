"""Looping: base commands, runs of identical base commands, and the loop penalties.

Actions are one-line strings as `protege.agent.tools.Action.summary()` writes them: the bash
command itself, or ``str_replace_editor <command> <path>``, or ``ask_expert`` / ``submit``.
"""

from __future__ import annotations

import os
import re
import shlex

SEARCH = "search"
SEARCH_COMMANDS = frozenset({"grep", "egrep", "fgrep", "rg", "find"})  # all count as one "search"
TWO_WORD = frozenset({"git", "pip", "pip3", "conda"})  # `git status` and `git diff` differ
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _split_chain(command: str) -> list[str]:
    """Split on `&&`, `;` and newlines outside quotes.

    >>> _split_chain("cd a && VAR='x;y' python t.py; ls")
    ['cd a', "VAR='x;y' python t.py", 'ls']
    """
    parts, cur, quote, i = [], [], None, 0
    while i < len(command):
        ch = command[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"' and i + 1 < len(command):
                cur.append(ch)
                i += 1
                ch = command[i]
        elif ch in "'\"":
            quote = ch
        elif ch == "\\" and i + 1 < len(command):
            cur.append(ch)
            i += 1
            ch = command[i]
        elif command.startswith("&&", i) or ch in ";\n":
            parts.append("".join(cur).strip())
            cur = []
            i += 2 if ch == "&" else 1
            continue
        cur.append(ch)
        i += 1
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def base_command(action: str) -> str:
    """The base command of one action (METHOD.md): strip leading VAR=value, take the last
    command of a `&&` / `;` chain, its first token, except two-word bases.

    >>> base_command("cd /repo && PYTHONPATH=. python -m pytest tests/test_a.py -x")
    'python -m pytest'
    >>> base_command("git diff HEAD~1")
    'git diff'
    >>> base_command("grep -rn foo src | head"), base_command("find . -name '*.py'")
    ('search', 'search')
    >>> base_command("str_replace_editor view src/a.py")
    'search'
    >>> base_command("str_replace_editor str_replace src/a.py")
    'str_replace_editor str_replace'
    >>> base_command("/usr/bin/python3 setup.py test"), base_command("ask_expert")
    ('python3', 'ask_expert')
    >>> base_command("  ")
    ''
    """
    chain = _split_chain(action)
    if not chain:
        return ""
    last = chain[-1]
    try:
        tokens = shlex.split(last, comments=False)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        tokens = last.split()
    while tokens and _ASSIGNMENT.match(tokens[0]):
        tokens = tokens[1:]
    if not tokens:
        return ""
    head = os.path.basename(tokens[0])
    if head in SEARCH_COMMANDS:
        return SEARCH
    if head == "str_replace_editor" and len(tokens) > 1:
        return SEARCH if tokens[1] == "view" else f"{head} {tokens[1]}"
    if re.fullmatch(r"python[0-9.]*", head) and len(tokens) > 2 and tokens[1] == "-m":
        return f"{head} -m {tokens[2]}"
    if head in TWO_WORD and len(tokens) > 1 and not tokens[1].startswith("-"):
        return f"{head} {tokens[1]}"
    return head


def run_lengths(actions: list[str]) -> list[int]:
    """Lengths of runs of consecutive identical base commands, in order.

    >>> run_lengths(["ls", "grep a x", "find .", "cat f", "cat g"])
    [1, 2, 2]
    >>> run_lengths([])
    []
    """
    runs: list[int] = []
    prev = None
    for base in map(base_command, actions):
        if runs and base == prev:
            runs[-1] += 1
        else:
            runs.append(1)
        prev = base
    return runs


def loop_penalty_paper(runs: list[int], k1: int = 15, k2: int = 8, lam: float = 0.5,
                       floor: float = -10.0) -> float:
    """R_loop = max(floor, -lam * [max(0, s1-k1+1) + sum_{j>=2} max(0, sj-k2+1)]), where s1 is
    the longest run and s2, s3, ... the others (the longest run gets the larger allowance).

    >>> loop_penalty_paper([3, 5, 2])
    0.0
    >>> loop_penalty_paper([16, 9, 8, 7])   # (16-14) + (9-7) + (8-7)
    -2.5
    >>> loop_penalty_paper([60, 40])
    -10.0
    """
    if not runs:
        return 0.0
    s = sorted(runs, reverse=True)
    excess = max(0, s[0] - k1 + 1) + sum(max(0, sj - k2 + 1) for sj in s[1:])
    return max(floor, -lam * excess) if excess else 0.0


def repeats_in_window(actions: list[str], window: int = 5) -> int:
    """C_loop of the popular variant: actions identical (whitespace-normalised) to one of the
    `window` actions before them.

    >>> repeats_in_window(["ls", "cat a", "ls", "pytest", "pytest", "x", "y", "z", "w", "v", "pytest"])
    2
    """
    norm = [" ".join(a.split()) for a in actions]
    return sum(a in norm[max(0, i - window):i] for i, a in enumerate(norm))


def has_long_run(actions: list[str], threshold: int = 10) -> bool:
    """The loop-rate metric (paper Fig. 6): a run of identical base commands longer than
    `threshold`.

    >>> has_long_run(["pytest"] * 11), has_long_run(["pytest"] * 10)
    (True, False)
    """
    return max(run_lengths(actions), default=0) > threshold


def trailing_run(actions: list[str]) -> int:
    """Length of the run of identical base commands that ends with the last action.

    >>> trailing_run(["ls", "cat a", "cat b"])
    2
    """
    runs = run_lengths(actions)
    return runs[-1] if runs else 0


def loop_heuristic_fires(actions: list[str], run_length: int = 4, window: int = 5) -> bool:
    """The ask-on-loop baseline's trigger: the last `run_length` actions share a base command,
    or the last action repeats verbatim one of the `window` before it.

    >>> loop_heuristic_fires(["cat a", "cat b", "cat c", "cat d"])
    True
    >>> loop_heuristic_fires(["pytest", "cat a", "pytest"])
    True
    >>> loop_heuristic_fires(["ls", "cat a", "pytest"])
    False
    """
    if not actions:
        return False
    last = " ".join(actions[-1].split())
    recent = [" ".join(a.split()) for a in actions[-window - 1:-1]]
    return trailing_run(actions) >= run_length or last in recent
