"""Build and validate the bundled benchmark.

For each bundled package: enumerate mutation sites, visit them in a seeded order that
alternates between mutation kinds, and keep a candidate only if, run for real in the
sandbox, some tests fail at the buggy commit (FAIL_TO_PASS), the rest pass (PASS_TO_PASS),
and everything passes with the gold patch. Rejections are counted by reason. The issue
text is written from what the failing test observed, never from the mutation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from protege.bugbench import mutate
from protege.bugbench.issues import _observation, _statement_at, _test_context, write_statement
from protege.core.paths import BUNDLED_PACKAGES_DIR
from protege.env.base import git
from protege.env.bundled_repos import base_message, commit_all, copy_package, package_names
from protege.env.sandbox import SandboxConfig, hand_over, run_command
from protege.models.patch_reading import one_line_change, token_hint
from protege.tasks.bundled import INSTANCES_FILE, PINPOINTED, TIERS
from protege.tasks.schema import BUNDLED_REPO_PREFIX, Task, load_tasks, save_tasks

# Plugins are not needed by the bundled packages and cost seconds per run at start-up.
TEST_CMD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -rA -p no:cacheprovider tests"


@dataclass
class BuildConfig:
    seed: int = 0  # one seed for site order and issue wording; same seed -> identical bytes
    per_package: int = 26  # validated instances kept per package
    max_candidates: int = 90  # candidates tried per package before stopping
    test_packages: tuple[str, ...] = ("gridlib", "statkit")  # held out: never in training data
    max_fail_fraction: float = 0.5  # a bug failing more of the suite than this is discarded
    timeout_s: float = 60.0  # per test-suite run; a mutation that hangs is discarded
    workers: int = 2  # candidates validated in parallel
    pinpoint_fraction: float = 0.35  # single-line bugs whose issue also pinpoints the line (tier "pinpointed")


@dataclass
class BuildReport:
    kept: Counter = field(default_factory=Counter)  # per package
    rejected: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # package -> reason
    tiers: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{'package':<12} {'kept':>5} {'rejected':>9}  reasons"]
        for pkg in sorted(set(self.kept) | set(self.rejected)):
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.rejected[pkg].items()))
            lines.append(f"{pkg:<12} {self.kept[pkg]:>5} {sum(self.rejected[pkg].values()):>9}  {reasons}")
        lines.append(f"total kept {sum(self.kept.values())}, rejected "
                     f"{sum(sum(c.values()) for c in self.rejected.values())}; tiers {dict(sorted(self.tiers.items()))}; "
                     f"kinds {dict(sorted(self.kinds.items()))}; {self.seconds:.0f}s")
        return "\n".join(lines)


# -------------------------------------------------------------------- running the suite

def run_suite(repo: Path, timeout_s: float) -> tuple[dict[str, str], dict[str, dict], str, bool]:
    """Run the package's tests in the sandbox: (status map via swebench's pytest parser,
    failure details, output, timed_out)."""
    from swebench.harness.log_parsers import parse_log_pytest

    work = Path(tempfile.mkdtemp(prefix="protege-suite-"))
    try:
        plugins = work / "plugins"
        plugins.mkdir()
        shutil.copy(Path(__file__).with_name("_pytest_report.py"), plugins / "protege_failure_report.py")
        (work / "home").mkdir()
        report = work / "failures.json"
        cfg = SandboxConfig(timeout_s=timeout_s, output_limit_chars=2_000_000,
                            extra_env={"PYTHONPATH": str(plugins), "PROTEGE_FAILURE_REPORT": str(report)})
        hand_over(work, cfg)
        hand_over(repo.parent, cfg)
        res = run_command(f"{TEST_CMD} -p protege_failure_report", repo, work / "home", cfg,
                          writable=[work, repo.parent])
        failures = json.loads(report.read_text()) if report.exists() else {}
        return parse_log_pytest(res.output, None), failures, res.output, res.timed_out
    finally:
        shutil.rmtree(work, ignore_errors=True)
        # Back to the caller's uid: host-side git trusts only repositories its own uid owns.
        uid = os.geteuid()
        for dirpath, _dirs, files in os.walk(repo.parent):
            os.lchown(dirpath, uid, uid)
            for name in files:
                os.lchown(os.path.join(dirpath, name), uid, uid)


# -------------------------------------------------------------------- issue texts


# -------------------------------------------------------------------- candidates

def candidate_sites(pkg: str, rng: random.Random) -> list[tuple[str, mutate.Site]]:
    """(file, site) pairs in a seeded order that cycles through mutation kinds."""
    src_dir = BUNDLED_PACKAGES_DIR / pkg / pkg
    by_kind: dict[str, list] = defaultdict(list)
    for path in sorted(src_dir.glob("*.py")):
        if path.name == "__init__.py":
            continue
        rel = path.relative_to(BUNDLED_PACKAGES_DIR / pkg).as_posix()
        for site in mutate.find_sites(path.read_text()):
            by_kind[site.kind].append((rel, site))
    for items in by_kind.values():
        rng.shuffle(items)
    order, kinds = [], sorted(by_kind)
    while any(by_kind.values()):
        for kind in kinds:
            if by_kind[kind]:
                order.append(by_kind[kind].pop())
    return order


def try_candidate(pkg: str, rel: str, site: mutate.Site, cfg: BuildConfig) -> dict:
    """Validate one mutation for real; returns {'ok': True, ...} or {'ok': False, 'reason': ...}."""
    tmp = Path(tempfile.mkdtemp(prefix="protege-build-"))
    try:
        repo = tmp / pkg
        copy_package(pkg, repo)
        clean = (repo / rel).read_text()
        try:
            buggy = mutate.apply(clean, site)
        except SyntaxError:
            return {"ok": False, "reason": "invalid_python"}
        if buggy == clean:
            return {"ok": False, "reason": "no_change"}
        (repo / rel).write_text(buggy)
        base = commit_all(repo, base_message(pkg))
        status, failures, output, timed_out = run_suite(repo, cfg.timeout_s)
        if timed_out:
            return {"ok": False, "reason": "timeout"}
        if not status:
            return {"ok": False, "reason": "suite_did_not_run"}
        f2p = sorted(t for t, s in status.items() if s in ("FAILED", "ERROR"))
        p2p = sorted(t for t, s in status.items() if s == "PASSED")
        if not f2p:
            return {"ok": False, "reason": "no_failing_test"}
        if len(f2p) > cfg.max_fail_fraction * len(status):
            return {"ok": False, "reason": "too_many_failing"}
        (repo / rel).write_text(clean)
        patch = git(["diff", "--no-color", "HEAD"], repo).stdout
        gold_status, _, _, gold_timeout = run_suite(repo, cfg.timeout_s)
        if gold_timeout or any(gold_status.get(t) != "PASSED" for t in f2p + p2p):
            return {"ok": False, "reason": "gold_does_not_pass"}
        return {"ok": True, "base": base, "patch": patch, "f2p": f2p, "p2p": p2p,
                "failures": failures, "output_tail": output[-2000:]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _instance(pkg: str, number: int, rel: str, site: mutate.Site, res: dict, rng: random.Random,
              split: str) -> Task | None:
    first = res["f2p"][0]
    fail = res["failures"].get(first, {})
    test_lines = (BUNDLED_PACKAGES_DIR / pkg / first.split("::")[0]).read_text().splitlines()
    lineno = fail.get("lineno")
    start = (lineno or 1) - 1
    for back in range(start, max(-1, start - 12), -1):  # the marked line may start earlier
        if test_lines[back].strip() == fail.get("line", "").strip():
            start = back
            break
    line = _statement_at(test_lines, start) if lineno else fail.get("line", "")
    following = _statement_at(test_lines, start + line.count("\n") + 1) if lineno else ""
    obs = _observation(line, fail.get("crash", ""), following)
    if obs is None:
        return None
    imports, setup, test_body = _test_context(BUNDLED_PACKAGES_DIR / pkg, first, fail.get("lineno"))
    reveal = rng.choices([0, 1, 2], weights=[0.35, 0.4, 0.25])[0]
    called_in_test = re.search(rf"\b{re.escape(site.function)}\b", "\n".join(test_body)) is not None
    distance = 0 if called_in_test else 1
    tier = TIERS[min(2, reveal + distance)]
    statement = write_statement(pkg, obs, imports, setup, first, reveal, rng)
    iid = f"protege-bench__{pkg}-{number:04d}"
    test_files = sorted({t.split("::")[0] for t in res["f2p"] + res["p2p"]})
    eval_script = "\n".join([
        "#!/bin/bash", "set -uxo pipefail",
        f"git checkout {res['base']} {' '.join(test_files)}",
        ": '>>>>> Start Test Output'", TEST_CMD, ": '>>>>> End Test Output'",
        f"git checkout {res['base']} {' '.join(test_files)}", ""])
    return Task(
        instance_id=iid, repo=f"{BUNDLED_REPO_PREFIX}{pkg}", base_commit=res["base"], patch=res["patch"],
        problem_statement=statement, FAIL_TO_PASS=res["f2p"], PASS_TO_PASS=res["p2p"], test_patch="",
        hints_text="", created_at="2025-01-01T00:00:00Z", version="0.1", environment_setup_commit=res["base"],
        difficulty=tier, image="protege-base:latest", eval_script=eval_script, log_parser="parse_log_pytest",
        eval_type="pass_and_fail",
        extra={"package": pkg, "split": split, "tier": tier, "reveal": reveal, "bug_distance": distance,
               "mutation": {"kind": site.kind, "file": rel, "line": site.line, "function": site.function,
                            "description": site.description},
               "test_cmd": TEST_CMD})


def build(cfg: BuildConfig | None = None, out: Path | None = None, packages: list[str] | None = None,
          progress: bool = True) -> tuple[list[Task], BuildReport]:
    """Build the benchmark; writes `out` (default: the bundled instances file)."""
    from tqdm.auto import tqdm

    cfg = cfg or BuildConfig()
    out = out or INSTANCES_FILE
    report = BuildReport()
    start = time.monotonic()
    tasks: list[Task] = []
    for pkg in packages or package_names():
        rng = random.Random(f"{cfg.seed}:{pkg}")
        split = "test" if pkg in cfg.test_packages else "train"
        sites = candidate_sites(pkg, rng)[: cfg.max_candidates]
        kept: list[Task] = []
        bar = tqdm(total=cfg.per_package, desc=pkg, disable=not progress, leave=False)
        with ThreadPoolExecutor(cfg.workers) as pool:
            # batches of `workers` keep the accepted set independent of thread timing
            for i in range(0, len(sites), cfg.workers):
                if len(kept) >= cfg.per_package:
                    break
                batch = sites[i:i + cfg.workers]
                results = list(pool.map(lambda s, pkg=pkg: try_candidate(pkg, s[0], s[1], cfg), batch))
                for (rel, site), res in zip(batch, results):
                    if len(kept) >= cfg.per_package:
                        break
                    if not res["ok"]:
                        report.rejected[pkg][res["reason"]] += 1
                        continue
                    if any(t.patch == res["patch"] for t in kept):
                        report.rejected[pkg]["duplicate_patch"] += 1
                        continue
                    task = _instance(pkg, len(kept) + 1, rel, site, res, rng, split)
                    if task is None:
                        report.rejected[pkg]["no_observable_failure"] += 1
                        continue
                    kept.append(task)
                    report.kinds[site.kind] += 1
                    report.tiers[task.difficulty] += 1
                    bar.update(1)
        bar.close()
        report.kept[pkg] = len(kept)
        tasks.extend(kept)
    if packages and out.exists():
        # Rebuilding some packages keeps the others' instances; per-package seeding makes the
        # result identical to a full rebuild.
        rebuilt = set(packages)
        kept_others = [t for t in load_tasks(out) if t.extra.get("package") not in rebuilt]
        order = {name: i for i, name in enumerate(package_names())}
        tasks = sorted(kept_others + tasks, key=lambda t: (order.get(t.extra["package"], 99), t.instance_id))
    tasks = add_pinpointed(tasks, cfg.pinpoint_fraction, cfg.seed)
    save_tasks(tasks, out)
    report.seconds = time.monotonic() - start
    return tasks, report


def pinpoint_note(task: Task, rng: random.Random) -> str | None:
    """What a careful reporter adds after debugging: the file, function and line of the bug and
    what is wrong in it (never the fixed code); None unless the gold patch changes one line."""

    one = one_line_change(task.patch)
    if one is None or not (hint := token_hint(one[1], one[2])):
        return None
    c, wrong = one[0], one[1]
    where = f"`{c.path}`" + (f", in `{c.function}`" if c.function else "") + f" (line {c.line})"
    opener = rng.choice(["I traced it to", "I debugged it: the problem is in", "The cause seems to be in"])
    return f"{opener} {where}: `{wrong.strip()}`. {hint}"


def add_pinpointed(tasks: list[Task], fraction: float, seed: int = 0) -> list[Task]:
    """Move a seeded `fraction` of each package's one-line bugs to the "pinpointed" tier: their
    issue text gets a `pinpoint_note`. Idempotent (a task already pinpointed is left alone);
    the tests and the gold patch do not change, so the tasks need no new validation."""
    out = []
    for t in tasks:
        rng = random.Random(f"{seed}:pinpoint:{t.instance_id}")
        if t.difficulty == PINPOINTED or rng.random() >= fraction or not (note := pinpoint_note(t, rng)):
            out.append(t)
            continue
        extra = {**t.extra, "tier": PINPOINTED, "tier_before_pinpoint": t.difficulty,
                 "reveal_before_pinpoint": t.extra.get("reveal"), "reveal": -1}
        out.append(dataclasses.replace(t, problem_statement=t.problem_statement.rstrip("\n") + "\n\n" + note + "\n",
                                       difficulty=PINPOINTED, extra=extra))
    return out


def build_report_json(report: BuildReport) -> dict:
    return {"kept": dict(report.kept), "rejected": {k: dict(v) for k, v in report.rejected.items()},
            "tiers": dict(report.tiers), "kinds": dict(report.kinds), "seconds": report.seconds}


# -------------------------------------------------------------------- validation


