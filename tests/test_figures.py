"""Figures from recorded results only: synthetic stage outputs with the stages' columns, every
figure written, byte-identical when regenerated, missing inputs skipped."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from protege.stages import figures, figures_eval, figures_sweep, plots

CONDITIONS = [  # name, policy, expert, invocation, oracle, skipped
    ("base", "transformers:tiny", "none", "learned", 0, ""),
    ("base+expert", "transformers:tiny", "reference", "learned", 1, ""),
    ("sft+expert", "transformers:runs/x/03_sft/merged", "reference", "learned", 1, ""),
    ("sft+rl+expert", "transformers:runs/x/04_rl/final", "reference", "learned", 1, ""),
    ("expert-as-agent", "scripted", "none", "learned", 1, ""),
    ("ablate-never", "transformers:runs/x/04_rl/final", "reference", "never", 1, ""),
    ("ablate-every5", "transformers:runs/x/04_rl/final", "reference", "every:5", 1, ""),
    ("ablate-random0.2", "transformers:runs/x/04_rl/final", "reference", "random:0.2", 1, ""),
    ("ablate-learned", "transformers:runs/x/04_rl/final", "reference", "learned", 1, ""),
    ("sft-inserted+expert", "transformers:runs/x/03_sft_inserted/merged", "reference", "learned", 1,
     "model folder runs/x/03_sft_inserted/merged does not exist"),
]


def write_results(run: Path, seed: int = 0, quality: float = 0.5) -> Path:
    """A run folder with synthetic outputs of stages 02-05 (the stages' file names and columns)."""
    rng = random.Random(seed)
    for stage in ("02_insert", "03_sft", "04_rl", "05_eval"):
        (run / stage).mkdir(parents=True, exist_ok=True)
        (run / stage / "config.json").write_text(json.dumps({"stage": stage, "seed": seed, "data": {"max_length": 64}}))
    pd.DataFrame([{"dataset": d, "n_expert_calls": rng.randint(0, 2), "length": rng.randint(20, 120),
                   **{f"tokens_{r}": rng.randint(5, 50) for r in plots.ROLE_COLORS}}
                  for d in ("live", "inserted-stall", "mixed") for _ in range(6)]).to_csv(run / "02_insert" / "stats.csv",
                                                                                          index=False)
    log = [{"step": s, "loss": 2.0 / s, "epoch": s / 10} for s in range(1, 11)]
    log += [{"step": s, "eval_loss": 2.2 / s, "epoch": s / 10} for s in (5, 10)]
    pd.DataFrame(log).to_csv(run / "03_sft" / "train_log.csv", index=False)
    (run / "03_sft" / "metrics.json").write_text(json.dumps({"train_loss": 0.4}))
    pd.DataFrame([{"step": s, "stage": "I", "reward_total": -1 + s / 8, "reward_task": s / 10, "reward_loop": -1 / s,
                   "resolve_rate": s / 10, "loop_rate": 1 / s, "expert_calls": 1.0, "steps": 10 - s / 2,
                   "trl/loss": 0.1 * s} for s in range(1, 9)]).to_csv(run / "04_rl" / "steps.csv", index=False)
    per, metrics = [], []
    for i, (name, policy, expert, inv, oracle, skipped) in enumerate(CONDITIONS):
        p = min(1.0, quality * i / len(CONDITIONS))
        rows = [] if skipped else [{
            "condition": name, "seed": 0, "instance_id": f"pkg__x-{k:04d}", "resolved": int(rng.random() < p),
            "exit_status": "submitted", "steps": rng.randint(3, 15), "expert_calls": 0 if expert == "none" else
            rng.randint(0, 3), "format_errors": 0, "protege_prompt_tokens": rng.randint(500, 900),
            "protege_completion_tokens": rng.randint(50, 90), "expert_input_tokens": 0 if expert == "none" else 100,
            "expert_output_tokens": 0 if expert == "none" else 40, "expert_token_share": 0.1,
            "cost_usd": 0.001 * rng.randint(0, 3), "loop": int(rng.random() < 0.3), "oracle": oracle}
            for k in range(8)]
        per += rows
        res = [r["resolved"] for r in rows]
        mean = sum(res) / len(res) if res else float("nan")
        metrics.append({"condition": name, "policy": policy, "expert": expert, "invocation": inv,
                        "n_tasks": 8 if rows else 0, "n_seeds": 1, "pass1_mean": mean,
                        "pass1_lo": max(mean - 0.2, 0), "pass1_hi": min(mean + 0.2, 1),
                        "expert_calls_per_task": 0.5 * i, "expert_token_share": 0.02 * i, "loop_rate": 0.3 / (i + 1),
                        "steps_per_task": 10 - i / 2, "cost_per_task": 0.001, "format_error_rate": 0.0,
                        "oracle": oracle, "skipped": skipped})
    pd.DataFrame(per).to_csv(run / "05_eval" / "per_instance.csv", index=False)
    pd.DataFrame(metrics).to_csv(run / "05_eval" / "metrics.csv", index=False)
    return run


EXPECTED = ["02_expert_calls", "02_tokens_by_role", "02_lengths", "03_sft_loss", "04_rl_curves", "05_pass1",
            "05_loop_rate", "05_invocation_ablation", "05_tokens_by_role", "05_cost_per_task", "05_steps_and_calls"]


def test_figures_for_run_makes_every_figure_and_is_byte_identical(tmp_path):
    run = write_results(tmp_path / "run")
    first = figures.figures_for_run(run, tmp_path / "a", "r1")
    assert [p.name for p in first] == [f"r1_{n}.png" for n in EXPECTED]
    second = figures.figures_for_run(run, tmp_path / "b", "r1")
    for a, b in zip(first, second):
        assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert a.read_bytes() == b.read_bytes(), a.name


def test_figures_for_run_skips_missing_inputs(tmp_path):
    run = write_results(tmp_path / "run")
    (run / "02_insert" / "stats.csv").unlink()
    (run / "04_rl" / "steps.csv").unlink()
    (run / "05_eval" / "per_instance.csv").unlink()
    names = [p.name for p in figures.figures_for_run(run, tmp_path / "f", "r")]
    assert names == ["r_03_sft_loss.png", "r_05_pass1.png", "r_05_loop_rate.png", "r_05_invocation_ablation.png"]
    assert figures.figures_for_run(tmp_path / "nothing", tmp_path / "f", "r") == []


def test_metrics_without_ablations_or_known_conditions(tmp_path):
    run = write_results(tmp_path / "run")
    m = pd.read_csv(run / "05_eval" / "metrics.csv")
    m = m[~m["condition"].str.startswith("ablate-")].assign(condition=lambda d: "c-" + d["condition"])
    assert figures_eval.ablation_rows(m).empty
    assert len(figures_eval.before_after_rows(m)) == len(plots.ran(m))  # fallback: every run condition
    assert figures_eval.loop_rate_before_after(m, tmp_path / "loop.png", "r", "h").exists()


def test_pass1_marks_oracle_and_handles_missing_interval(tmp_path):
    m = pd.DataFrame({"condition": ["a", "b"], "pass1_mean": [0.0, 0.5], "pass1_lo": [float("nan"), 0.25],
                      "pass1_hi": [float("nan"), 0.75], "oracle": [0, 1], "skipped": ["", ""]})
    assert plots.condition_label("b", 1) == "b  ORACLE" and plots.condition_label("a", 0) == "a"
    assert figures_eval.pass1_table(m, tmp_path / "p.png", "r", "h").stat().st_size > 1000


def write_sweep(sweep: Path) -> None:
    points = []
    for a in (0.0, 0.2):
        for b in (0, 0.2):
            pid = f"lambda_loop={a:g},lambda_collab={b:g}"
            points.append({"id": pid, "params": {"lambda_loop": a, "lambda_collab": b}, "status": "done"})
            run = sweep / pid / "results"
            (run / "05_eval").mkdir(parents=True)
            pd.DataFrame([{"condition": "base", "pass1_mean": 0.1, "expert_token_share": 0.0, "skipped": ""},
                          {"condition": "sft+rl+expert", "pass1_mean": 0.3 + a - b, "expert_token_share": 0.1 + a + b,
                           "skipped": ""}]).to_csv(run / "05_eval" / "metrics.csv", index=False)
            if b:  # only some points trained with RL: the curves show those
                (run / "04_rl").mkdir()
                pd.DataFrame({"step": [1, 2], "stage": [2, 2], "reward_total": [0.3, 0.4 - b],
                              "expert_calls": [1.0, 1.0 - b], "resolve_rate": [0.5, 0.6]}).to_csv(
                    run / "04_rl" / "steps.csv", index=False)
    (sweep / "sweep.json").write_text(json.dumps({"sweep_id": sweep.name, "preset": "smoke", "grid": {
        "lambda_loop": [0.0, 0.2], "lambda_collab": [0, 0.2]}, "base_params": {}, "reuse_from": None,
        "points": points}))


def test_sweep_table_and_figures(tmp_path):
    write_sweep(tmp_path / "sw")
    table = figures_sweep.sweep_table(tmp_path / "sw")
    assert len(table) == 4 and set(table["condition"]) == {"sft+rl+expert"}
    assert table.set_index("point").loc["lambda_loop=0.2,lambda_collab=0", "pass1_mean"] == pytest.approx(0.5)
    made = figures_sweep.figures_for_sweep(tmp_path / "sw", tmp_path / "f", "sw")
    assert [p.name for p in made] == ["sw_sweep_heatmap.png", "sw_sweep_pareto.png", "sw_sweep_rl_curves.png"]
    steps = figures_sweep.sweep_steps(tmp_path / "sw", "sw: ")
    assert list(steps) == ["sw: lambda_loop=0,lambda_collab=0.2", "sw: lambda_loop=0.2,lambda_collab=0.2"]
    assert steps["sw: lambda_loop=0,lambda_collab=0.2"]["expert_calls"].tolist() == pytest.approx([1.0, 0.8])
    again = figures_sweep.figures_for_sweep(tmp_path / "sw", tmp_path / "g", "sw")
    assert [p.read_bytes() for p in made] == [p.read_bytes() for p in again]
    assert figures_sweep.sweep_table(tmp_path / "sw", "base")["pass1_mean"].tolist() == [0.1] * 4
    assert figures_sweep.figures_for_sweep(tmp_path / "none", tmp_path / "f", "x") == []
    # a pending point's folder (e.g. a committed record a user's sweep has not replaced yet) is not read
    record = json.loads((tmp_path / "sw/sweep.json").read_text())
    record["points"][1]["status"] = "pending"
    (tmp_path / "sw/sweep.json").write_text(json.dumps(record))
    assert "lambda_loop=0,lambda_collab=0.2" not in figures_sweep.sweep_table(tmp_path / "sw")["point"].tolist()
    assert list(figures_sweep.sweep_steps(tmp_path / "sw")) == ["lambda_loop=0.2,lambda_collab=0.2"]


def test_one_parameter_sweep_heatmap(tmp_path):
    table = pd.DataFrame({"point": ["a=0", "a=1"], "a": [0, 1], "pass1_mean": [0.2, 0.4], "condition": ["c", "c"]})
    assert figures_sweep.sweep_heatmap(table, tmp_path / "h.png", "s", "h", "a").exists()


def test_notebook_06_on_recorded_results(tmp_path):
    import nbformat
    import papermill as pm

    root = Path(__file__).resolve().parent.parent
    run = write_results(tmp_path / "results")
    write_sweep(tmp_path / "sw")
    out = tmp_path / "06.ipynb"
    pm.execute_notebook(str(root / "notebooks" / "06_figures.ipynb"), str(out), kernel_name="python3",
                        parameters={"run_dir": str(run), "run_id": "nb", "figures_dir": str(tmp_path / "f"),
                                    "sweep_dir": str(tmp_path / "sw")}, cwd=str(root), progress_bar=False)
    assert sorted(p.name for p in (tmp_path / "f").glob("*.png")) == sorted(
        [f"nb_{n}.png" for n in EXPECTED] + ["sw_sweep_heatmap.png", "sw_sweep_pareto.png", "sw_sweep_rl_curves.png"])
    outputs = json.dumps([o for c in nbformat.read(str(out), as_version=4).cells if c.cell_type == "code"
                          for o in c.get("outputs", [])])
    assert outputs.count("image/png") == len(EXPECTED) + 3 and "lambda_loop=0.2,lambda_collab=0" in outputs
    # the same figures as figures_for_run makes from the same records
    again = figures.figures_for_run(run, tmp_path / "g", "nb")
    assert all((tmp_path / "f" / p.name).read_bytes() == p.read_bytes() for p in again)


def test_episode_endings_shares_and_figure(tmp_path):
    import pandas as pd

    runs = {"sft": pd.DataFrame({"resolved": [1, 0, 0, 0], "exit_status": ["submitted", "step_limit", "format_errors",
                                                                           "submitted"], "loop": [0, 1, 0, 0]}),
            "penalised": pd.DataFrame({"resolved": [1, 0, 0, 0], "exit_status": ["submitted", "format_errors",
                                                                                 "format_errors", "repeat_limit"],
                                       "loop": [0, 0, 0, 0]})}
    table = figures_eval.endings_table(runs).set_index("model")
    assert table.loc["sft", "step / repeat limit"] == 0.25 and table.loc["penalised", "format errors"] == 0.5
    assert table.loc["sft", "loop_rate"] == 0.25 and table.loc["penalised", "loop_rate"] == 0.0
    names = [name for name, _ in figures_eval.ENDINGS]
    assert all(abs(sum(table.loc[m, names]) - 1) < 1e-9 for m in runs)
    assert figures_eval.episode_endings(runs, tmp_path / "e.png", "r", "h").stat().st_size > 1000


def test_in_vs_out_of_distribution_figure(tmp_path):
    import pandas as pd

    def metrics(desc, exact, n):
        return pd.DataFrame({"condition": ["sft+expert", "sft+expert-exact_edit"], "expert": ["reference", "reference:exact_edit"],
                             "pass1_mean": [desc, exact], "pass1_lo": [desc / 2, exact / 2], "pass1_hi": [desc, exact],
                             "n_tasks": [n, n], "skipped": [None, None]})

    levels = figures_eval.strength_rows(metrics(0.1, 0.3, 10), min_rows=1)["level"].tolist()
    assert levels == ["description", "exact_edit"]
    path = figures_eval.in_vs_out_of_distribution({"bundled": metrics(0.5, 0.8, 52), "real": metrics(0.1, 0.3, 10)},
                                                  tmp_path / "f.png", "r", "h")
    assert path.stat().st_size > 1000
