"""Stage 05: conditions x seeds on 2 bundled held-out tasks (tiny model + the scripted ORACLE)."""

from __future__ import annotations

import csv
import doctest
import json
import shutil
from pathlib import Path

import pytest

from protege.models.factory import is_oracle, make_expert
from protege.stages import compare as compare_mod
from protege.stages import evaluate, evaluate_config
from protege.stages.evaluate import METRICS_COLUMNS, PER_INSTANCE_COLUMNS, run_evaluation
from protege.stages.evaluate_config import EvalConfig


def cli_app(argv):
    """The `protege` command in-process (its value returned, its errors raised)."""
    from protege.app.cli import app

    return app(argv, standalone_mode=False)

CONDITIONS = [
    {"name": "oracle-agent", "policy": "scripted", "expert": "none", "notes": "ORACLE"},
    {"name": "tiny+expert", "policy": "transformers:tiny", "expert": "reference"},
    {"name": "forced", "policy": "transformers:tiny", "expert": "reference", "invocation": "every:2",
     "block_policy_asks": True},
    {"name": "sft+expert", "policy": "transformers:{run_dir}/03_sft/merged", "expert": "reference"},
]


def _config(**overrides) -> EvalConfig:
    return EvalConfig.preset("smoke", **{"conditions": CONDITIONS, "limit": 2, "seeds": [0], "step_limit": 8,
                                         "max_new_tokens": 16, "harness": "dry_run", **overrides})


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pipeline")
    out = run_dir / "05_eval"
    result = run_evaluation(_config(), run_dir, out, progress=False)
    return run_dir, out, result


def test_csvs_have_exactly_the_columns(evaluated):
    _, out, _ = evaluated
    header, rows = read_table(out / "per_instance.csv")
    assert header == list(PER_INSTANCE_COLUMNS)
    assert len(rows) == 3 * 2  # 3 runnable conditions x 1 seed x 2 tasks
    header, rows = read_table(out / "metrics.csv")
    assert header == list(METRICS_COLUMNS)
    assert [r["condition"] for r in rows] == [c["name"] for c in CONDITIONS]
    config = json.loads((out / "config.json").read_text())
    assert config["eval"]["limit"] == 2 and len(config["instance_ids"]) == 2
    assert [c["name"] for c in config["conditions"]] == [c["name"] for c in CONDITIONS]
    header, rows = read_table(out / "paired.csv")  # no pair of KEY_PAIRS among these conditions
    assert header == list(evaluate.PAIRED_COLUMNS) and rows == []


def test_paired_comparisons_of_a_real_evaluation(evaluated):
    _, out, _ = evaluated
    rows = compare_mod.paired_comparisons(out, [("tiny+expert", "oracle-agent", "q"), ("tiny+expert", "absent", "x")])
    assert [(r["question"], r["metric"], r["n"]) for r in rows] == [
        ("q", m, 2) for m in ("pass1", "expert_calls", "loop", "repeats", "format_errors")]
    assert rows[0]["diff"] == rows[0]["b"] - rows[0]["a"] and rows[0]["b"] == 1.0  # the ORACLE agent resolves both


def test_scripted_oracle_resolves_and_is_labelled(evaluated):
    _, out, _ = evaluated
    rows = [r for r in read_table(out / "per_instance.csv")[1] if r["condition"] == "oracle-agent"]
    assert [(r["resolved"], r["oracle"], r["exit_status"]) for r in rows] == [("1", "1", "submitted")] * 2
    metrics = {r["condition"]: r for r in read_table(out / "metrics.csv")[1]}
    m = metrics["oracle-agent"]
    assert (float(m["pass1_mean"]), float(m["pass1_lo"]), float(m["pass1_hi"])) == (1.0, 1.0, 1.0)
    assert (m["oracle"], m["n_tasks"], m["n_seeds"], m["skipped"]) == ("1", "2", "1", "")
    # the reference expert is an oracle too; the tiny model does not solve anything
    assert metrics["tiny+expert"]["oracle"] == "1" and float(metrics["tiny+expert"]["pass1_mean"]) == 0.0
    preds = (out / "oracle-agent" / "seed0" / "preds.jsonl").read_text().splitlines()
    assert len(preds) == 2 and all(json.loads(p)["model_patch"].startswith("diff --git") for p in preds)
    assert json.loads((out / "oracle-agent" / "seed0" / "harness.json").read_text())["problems"] == []


def test_missing_model_is_skipped_with_reason(evaluated):
    run_dir, out, _ = evaluated
    m = {r["condition"]: r for r in read_table(out / "metrics.csv")[1]}["sft+expert"]
    # The CSV names the run folder `{run_dir}` (two runs of a preset compare byte for byte) ...
    assert m["skipped"] == "model folder {run_dir}/03_sft/merged does not exist"
    assert m["policy"] == "transformers:{run_dir}/03_sft/merged"
    # ... and config.json keeps the resolved path.
    conds = {c["name"]: c for c in json.loads((out / "config.json").read_text())["conditions"]}
    assert str(run_dir / "03_sft" / "merged") in conds["sft+expert"]["skipped"]
    assert (m["n_tasks"], m["pass1_mean"]) == ("0", "")
    assert not (out / "sft+expert").exists()
    assert "sft+expert" not in {r["condition"] for r in read_table(out / "per_instance.csv")[1]}


def test_fixed_interval_baseline_forces_expert_calls(evaluated):
    _, out, _ = evaluated
    rows = [r for r in read_table(out / "per_instance.csv")[1] if r["condition"] == "forced"]
    assert len(rows) == 2 and all(int(r["expert_calls"]) > 0 for r in rows)
    assert all(int(r["expert_input_tokens"]) > 0 and float(r["expert_token_share"]) > 0 for r in rows)
    m = {r["condition"]: r for r in read_table(out / "metrics.csv")[1]}["forced"]
    assert float(m["expert_calls_per_task"]) > 0 and m["invocation"] == "every:2"


def test_resume_skips_finished_instances(evaluated, tmp_path):
    run_dir, out, _ = evaluated
    copy = tmp_path / "05_eval"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "forced")  # the tiny-model conditions are kept: only scripted work is redone
    folder = copy / "oracle-agent" / "seed0"
    kept = folder / "trajectories" / "protege-bench__gridlib-0001.json"
    redo = folder / "trajectories" / "protege-bench__gridlib-0002.json"
    before = kept.stat().st_mtime_ns
    redo.unlink()
    config = _config(conditions=[c for c in CONDITIONS if c["name"] != "forced"])
    run_evaluation(config, run_dir, copy, progress=False)
    assert kept.stat().st_mtime_ns == before and redo.exists()
    for name in ("trajectories.jsonl", "preds.jsonl"):
        ids = [json.loads(line)["instance_id"] for line in (folder / name).read_text().splitlines()]
        assert sorted(ids) == ["protege-bench__gridlib-0001", "protege-bench__gridlib-0002"]
    assert len(json.loads((folder / "report.json").read_text())["instances"]) == 2
    rows = read_table(copy / "per_instance.csv")[1]
    keys = [(r["condition"], r["seed"], r["instance_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 4
    # other settings in the same folder are refused, not mixed in
    with pytest.raises(ValueError, match="other settings"):
        run_evaluation(_config(conditions=CONDITIONS[:1], step_limit=9), run_dir, copy, progress=False)
    with pytest.raises(ValueError, match="repeat_limit: None -> 11"):
        run_evaluation(_config(conditions=CONDITIONS[:1], repeat_limit=11), run_dir, copy, progress=False)


def test_resolution_best_model_and_shared_runs(tmp_path):
    config = EvalConfig.preset("smoke")
    (tmp_path / "04_rl" / "final").mkdir(parents=True)
    (tmp_path / "04_rl" / "final" / "config.json").write_text("{}")
    conds = {c.name: c for c in evaluate_config.resolve_conditions(config, tmp_path)}
    best = f"transformers:{tmp_path}/04_rl/final"
    assert conds["sft+rl+expert"].policy == best and not conds["sft+rl+expert"].skipped
    assert "does not exist" in conds["sft+expert"].skipped
    assert conds["ablate-every5"].policy == best and conds["ablate-every5"].block_policy_asks
    assert conds["ablate-learned"].run_as == "sft+rl+expert"  # identical settings: run once
    assert conds["noisy-expert"].expert == "noisy:0.3:reference" and conds["noisy-expert"].policy == best
    assert conds["expert-as-agent"].policy == "scripted" and "ORACLE" in conds["expert-as-agent"].notes
    empty = {c.name: c for c in evaluate_config.resolve_conditions(config, tmp_path / "none")}
    assert "no trained model" in empty["ablate-never"].skipped and empty["ablate-never"].policy == "{best}"


def test_noisy_expert_spec_wraps_the_reference_oracle():
    expert = make_expert("noisy:0.3", seed=1)
    assert expert.p == 0.3 and expert.oracle and expert.inner.name.startswith("reference-expert")
    assert make_expert("none") is None
    with pytest.raises(ValueError):
        make_expert("bogus")


def test_expert_specs_levels_and_a_local_model_as_expert():
    from protege.core.protocols import ExpertRequest

    assert make_expert("reference:exact_edit").hint_level == "exact_edit"
    assert make_expert("reference").hint_level == "description"
    assert is_oracle("transformers:tiny", "reference:location")
    own = make_expert("policy:tiny")
    assert not own.oracle and not is_oracle("transformers:tiny", "policy:tiny")
    reply = own.advise(ExpertRequest("Where is the bug?", [{"role": "user", "content": "x"}], "t-1", "issue text",
                                     gold_patch="diff --git a/x b/x"))  # a non-oracle never gets the patch
    assert not reply.failed and reply.text and reply.output_tokens > 0 and not reply.oracle


def test_by_tier_and_by_mutation_tables(evaluated):
    _, out, result = evaluated
    header, rows = read_table(out / "metrics_by_tier.csv")
    assert header == list(evaluate.GROUP_COLUMNS)
    per = {r["instance_id"]: r["tier"] for r in result.per_instance}
    assert set(per.values()) <= {"pinpointed", "easy", "medium", "hard"}
    oracle = [r for r in rows if r["condition"] == "oracle-agent"]
    assert sum(int(r["n_tasks"]) for r in oracle) == 2 and all(float(r["pass1_mean"]) == 1.0 for r in oracle)
    _, by_kind = read_table(out / "metrics_by_mutation.csv")
    kinds = {r["mutation"] for r in result.per_instance}
    assert {r["group"] for r in by_kind} == kinds and "-" not in kinds


def test_main_dry_run_lists_conditions(tmp_path, capsys):
    assert cli_app(["evaluate", "--preset", "smoke", "--run-dir", str(tmp_path), "--dry-run",
                          "--set", "noisy_p=-1", "--set", "invocation_ablations=[\"every:3\"]"]) == 0
    names = [c["name"] for c in json.loads(capsys.readouterr().out)]
    assert names == ["base", "base+expert", "sft", "sft+expert", "sft+rl+expert", "sft+rl", "expert-as-agent", "ablate-every3",
                     "sft-inserted+expert", "self-expert"]
    with pytest.raises(ValueError, match="EvalConfig: unknown field .bogus."):
        cli_app(["evaluate", "--run-dir", str(tmp_path), "--dry-run", "--set", "bogus=1"])


def test_metric_helper_doctests():
    assert doctest.testmod(evaluate).failed == 0


def test_a_served_protege_runs_behind_a_launched_server(tmp_path):
    """serve="transformers" (the CPU stand-in for `full`'s vLLM): the condition's model is launched
    behind a real OpenAI-compatible server, its episodes go through OpenAIPolicy, the launch line
    and log stay in the seed folder, and the server is stopped afterwards."""
    import urllib.request

    config = _config(serve="transformers", conditions=[CONDITIONS[1]], harness="off", step_limit=2)
    run_evaluation(config, tmp_path, tmp_path / "05_eval", progress=False)
    seed = tmp_path / "05_eval" / "tiny+expert" / "seed0"
    launch = json.loads((seed / "server_launch.json").read_text())
    assert launch["backend"] == "transformers" and launch["command"][1] == "serve" and launch["ready_after_s"] > 0
    assert (seed / "server.log").stat().st_size > 0
    trajs = [json.loads(line) for line in (seed / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajs) == 2 and all(t["model"] == "transformers:tiny" for t in trajs)
    assert all(t["tokens"]["protege_prompt"] > 0 for t in trajs)  # usage reported by the server
    with pytest.raises(OSError):  # nothing listens any more
        urllib.request.urlopen(launch["base_url"] + "/models", timeout=2)


def _per_instance(path: Path, condition: str, resolved: list[int], calls: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["condition", "seed", "instance_id", "resolved", "expert_calls", "tier"])
        writer.writeheader()
        for i, (r, c) in enumerate(zip(resolved, calls)):
            writer.writerow({"condition": condition, "seed": 0, "instance_id": f"t{i}", "resolved": r,
                             "expert_calls": c, "tier": "easy" if i < 4 else "hard"})
    return path


def test_compare_pairs_tasks_and_names_bad_input(tmp_path):
    a = _per_instance(tmp_path / "a" / "per_instance.csv", "x", [0, 0, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1])
    b = _per_instance(tmp_path / "b" / "per_instance.csv", "y", [1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1])
    table = {(r["group"], r["metric"]): r for r in compare_mod.compare(tmp_path / "a", b)}
    assert list(table) == [("all", "pass1"), ("all", "expert_calls"), ("easy", "pass1"), ("easy", "expert_calls"),
                           ("hard", "pass1"), ("hard", "expert_calls")]
    overall = table["all", "pass1"]
    assert (overall["a_condition"], overall["b_condition"], overall["n"]) == ("x", "y", 6)
    assert overall["diff"] == pytest.approx(0.5) and (overall["b_better"], overall["a_better"]) == (3, 0)
    assert overall["lo"] > 0  # paired: B never loses a task, so even the interval's low end is a gain
    assert table["easy", "expert_calls"]["diff"] == pytest.approx(-0.5) and table["hard", "pass1"]["diff"] == 0
    markdown = compare_mod.comparison_markdown(list(table.values()))
    assert "| all | pass1 | 6 | 33.3% | 83.3% | 50.0% [" in markdown and "A = x, B = y" in markdown
    both = tmp_path / "both.csv"
    both.write_text(a.read_text() + "".join(b.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(ValueError, match=r"both.csv: field 'condition' is ambiguous; conditions there: x, y"):
        compare_mod.compare(both, b)
    with pytest.raises(ValueError, match=r"has no 'z'"):
        compare_mod.compare(both, both, "x", "z")
    assert compare_mod.compare(both, both, "x", "y", by=None)[0]["diff"] == pytest.approx(0.5)
    (tmp_path / "other.csv").write_text("instance_id,resolved\nt0,1\n")
    with pytest.raises(ValueError, match=r"other.csv: missing field\(s\) condition, expert_calls"):
        compare_mod.compare(tmp_path / "other.csv", b)

    from typer.testing import CliRunner

    from protege.app.cli import app

    out = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(b), "--by", "none"])
    assert out.exit_code == 0 and out.output.count("\n| all |") == 2
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "missing"), str(b)])
    assert out.exit_code == 1 and "missing: no per_instance.csv" in out.output


def test_real_tasks_from_a_task_file_and_a_mirror(tmp_path):
    """Stage 05 out of distribution (issue 41): tasks from a task file whose repositories are cloned
    from a mirror template, graded by the runner the config names; an unknown runner is refused
    before any episode runs."""
    from protege.tasks.schema import save_tasks
    from tests.swe_repo import make_repo

    _, task = make_repo(tmp_path / "mirrors")
    tasks_file = save_tasks([task], tmp_path / "real.jsonl")
    config = _config(conditions=CONDITIONS[:1], tasks=str(tasks_file), limit=-1, harness="off",
                     mirror_template=str(tmp_path / "mirrors" / "{owner}__{name}"), runner="sandbox")
    out = tmp_path / "05_eval"
    run_evaluation(config, tmp_path, out, progress=False)
    _, rows = read_table(out / "per_instance.csv")
    assert [(r["instance_id"], r["resolved"]) for r in rows] == [("acme__calc-1", "1")]
    assert json.loads((out / "config.json").read_text())["eval"]["mirror_template"].endswith("{owner}__{name}")
    with pytest.raises(ValueError, match="'runner'"):
        run_evaluation(_config(runner="docker-less"), tmp_path, tmp_path / "other", progress=False)


def _eval_folder(folder: Path, resolved: dict[str, list[int]]) -> Path:
    """A minimal evaluation folder: per_instance.csv of `resolved` per condition, metrics.csv and
    metrics_by_tier.csv as their means (what compare_runs reads)."""
    import pandas as pd

    rows = [{"condition": c, "seed": 0, "instance_id": f"t{i}", "resolved": r, "expert_calls": 1,
             "tier": "easy" if i < 4 else "hard"} for c, rs in resolved.items() for i, r in enumerate(rs)]
    per = pd.DataFrame(rows)
    folder.mkdir(parents=True)
    per.to_csv(folder / "per_instance.csv", index=False)
    means = per.groupby("condition", sort=False).agg(pass1_mean=("resolved", "mean"),
                                                     expert_calls_per_task=("expert_calls", "mean")).reset_index()
    means.assign(skipped="").to_csv(folder / "metrics.csv", index=False)
    by_tier = per.groupby(["condition", "tier"], sort=False).agg(
        pass1_mean=("resolved", "mean"), expert_calls_per_task=("expert_calls", "mean"),
        n_tasks=("resolved", "size")).reset_index().rename(columns={"tier": "group"})
    by_tier.assign(oracle=0).to_csv(folder / "metrics_by_tier.csv", index=False)
    return folder


def test_compare_runs_sets_runs_side_by_side_and_pairs_them(tmp_path):
    tool = _eval_folder(tmp_path / "tool", {"sft": [0, 0, 1, 0, 0, 0], "sft+expert": [0, 0, 0, 1, 1, 0]})
    token = _eval_folder(tmp_path / "token", {"sft+expert": [1, 1, 1, 1, 1, 0], "only-here": [1] * 6})
    result = compare_mod.compare_runs({"tool": tool, "token": token}, tmp_path / "cmp")
    assert result["conditions"] == ["sft+expert"]  # shared conditions only
    metrics = (tmp_path / "cmp" / "metrics.csv").read_text()
    assert "sft+expert [tool]" in metrics and "sft+expert [token]" in metrics and "only-here" not in metrics
    overall = next(r for r in result["paired"] if r["group"] == "all" and r["metric"] == "pass1")
    assert overall["question"] == "sft+expert: token vs tool" and overall["diff"] == pytest.approx(0.5)
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| sft+expert: token vs tool | pass1 | 6 | 33.3% | 83.3% | 50.0% [" in md
    assert "| sft+expert [token] | 100.0% / 1.00 | 50.0% / 1.00 |" in md  # by tier: easy, hard
    with pytest.raises(ValueError, match="not run in every run"):
        compare_mod.compare_runs({"tool": tool, "token": token}, tmp_path / "x", ["sft"])
    with pytest.raises(FileNotFoundError, match="run 'gone'"):
        compare_mod.compare_runs({"tool": tool, "gone": tmp_path / "nothing"}, tmp_path / "x")
