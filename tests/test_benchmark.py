import random
from collections import Counter

import pytest

from protege.bugbench import mutate
from protege.bugbench.build import BuildConfig, build
from protege.bugbench.validate import validate
from protege.env.bundled_repos import package_names
from protege.tasks.bundled import INSTANCES_FILE, load_bundled

SAMPLE = '''def f(xs, lo, hi, flag, other):
    """Doc."""
    if lo > hi:
        return []
    out = []
    for i in range(lo, hi):
        if flag and other:
            out.append(helper(xs[i], lo) * 2)
    return out[1:] + xs[:hi]
'''


def test_all_mutation_kinds_found_and_valid():
    sites = mutate.find_sites(SAMPLE)
    assert {s.kind for s in sites} == set(mutate.KINDS)
    for site in sites:
        mutated = mutate.apply(SAMPLE, site)
        assert mutated != SAMPLE
        changed = [a for a, b in zip(SAMPLE.splitlines(), mutated.splitlines()) if a != b]
        assert 1 <= len(changed) <= 2 or site.kind == "drop_guard"


@pytest.mark.parametrize("kind, expected", [
    ("compare_flip", "    if lo >= hi:"), ("off_by_one", "    for i in range(lo, hi - 1):"),
    ("swap_args", "            out.append(helper(lo, xs[i]) * 2)"), ("bool_flip", "        if flag or other:"),
    ("drop_operand", "        if flag:"), ("drop_guard", "    pass"),
])
def test_mutation_examples(kind, expected):
    site = next(s for s in mutate.find_sites(SAMPLE) if s.kind == kind)
    assert expected in mutate.apply(SAMPLE, site).splitlines()


def test_docstrings_and_defaults_are_not_mutated():
    src = 'def g(n=3):\n    """Returns 5."""\n    return n\n'
    assert mutate.find_sites(src) == []


def test_rebuild_is_byte_identical(tmp_path):
    cfg = BuildConfig(per_package=2, max_candidates=8, seed=7)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    tasks, report = build(cfg, out=a, packages=["textkit"], progress=False)
    build(cfg, out=b, packages=["textkit"], progress=False)
    assert len(tasks) == 2 and a.read_bytes() == b.read_bytes()
    assert sum(report.rejected["textkit"].values()) + 2 <= 8


def test_bundled_benchmark_shape():
    tasks = load_bundled()
    assert len(tasks) >= 150
    assert len(package_names()) >= 6
    by_split = {s: {t.extra["package"] for t in tasks if t.extra["split"] == s} for s in ("train", "test")}
    assert by_split["train"] and by_split["test"] and not by_split["train"] & by_split["test"]
    assert set(Counter(t.difficulty for t in tasks)) == {"easy", "medium", "hard", "pinpointed"}
    assert len({t.extra["mutation"]["kind"] for t in tasks}) >= 6
    assert INSTANCES_FILE.exists()
    for t in tasks:
        assert t.FAIL_TO_PASS and t.PASS_TO_PASS and t.base_commit and t.patch.startswith("diff --git")
        added = [ln[1:].strip() for ln in t.patch.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        # the issue describes the misbehaviour, never the fix
        assert not any(a and len(a) > 8 and a in t.problem_statement for a in added), t.instance_id


def test_validation_sample_one_per_package():
    tasks = load_bundled()
    rng = random.Random(0)
    sample = [rng.choice([t for t in tasks if t.extra["package"] == p]) for p in sorted({t.extra["package"] for t in tasks})]
    rows = validate(sample, progress=False)
    assert all(r["gold_resolved"] and not r["empty_resolved"] for r in rows), rows


def test_pinpointed_tier_names_the_line_but_not_the_fix():
    from protege.models.patch_reading import parse_patch

    tasks = load_bundled()
    for split in ("train", "test"):
        pinned = [t for t in tasks if t.extra["split"] == split and t.difficulty == "pinpointed"]
        assert len(pinned) >= 10, split
    for t in (t for t in tasks if t.difficulty == "pinpointed"):
        change = parse_patch(t.patch)[0]
        assert f"`{change.path}`" in t.problem_statement and f"(line {change.line})" in t.problem_statement
        assert t.extra["reveal"] == -1 and t.extra["tier_before_pinpoint"] in ("easy", "medium", "hard")
        added = [ln.strip() for ln in change.added if ln.strip()]
        assert not any(a in t.problem_statement for a in added), t.instance_id
