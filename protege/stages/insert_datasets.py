"""Stage 02's glue: its settings and presets, insertion over a collection's files, the SFT datasets
built from them (live, inserted-*, mixed) with their statistics and figures."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from protege.agent.loop import render_ask, render_guidance
from protege.core.actions import COLLABORATE
from protege.core.config import config_hash, resolve
from protege.core.protocols import Expert
from protege.core.trajectory import atomic_write, read_jsonl
from protege.models.factory import make_expert
from protege.models.registry import resolve_model
from protege.stages import figures
from protege.stages.dataset import row_from_trajectory, save_dataset, stats_frame, stats_table
from protege.stages.insert_calls import InsertConfig, action_summary, insert_calls
from protege.stages.sft_config import PRESETS as SFT_PRESETS
from protege.tasks.bundled import load_bundled


@dataclass
class InsertSummary:
    strategy: str
    trajectories: int
    calls: int
    with_calls: int
    calls_per_trajectory: dict[int, int] = field(default_factory=dict)


def insert_file(src: str | Path, dest: str | Path, config: InsertConfig, expert: Expert | None = None) -> InsertSummary:
    """Insert calls into every trajectory of `src` (a kept.jsonl of expert-only trajectories)
    and write `dest` (.jsonl). Rerunning rewrites `dest` from `src` (insertion is cheap and
    deterministic given the config)."""
    src, dest = Path(src), Path(dest)
    rows = read_jsonl(src)
    out, per = [], Counter()
    for n, traj in enumerate(rows, 1):
        if traj.get("ask_expert") or any(c for c in traj.get("expert_calls", [])):
            raise ValueError(f"{src}: line {n}, instance {traj.get('instance_id')!r}: field 'expert_calls' is not "
                             "empty; insertion takes expert-only trajectories (collect with ask_expert=False)")
        try:
            new = insert_calls(traj, config, expert)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{src}: line {n}, instance {traj.get('instance_id')!r}: malformed trajectory "
                             f"({type(exc).__name__}: {exc})") from exc
        out.append(new)
        per[new["n_inserted"]] += 1
    atomic_write(dest, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))
    summary = InsertSummary(config.strategy, len(out), sum(r["n_inserted"] for r in out),
                            sum(1 for r in out if r["n_inserted"]), dict(sorted(per.items())))
    atomic_write(dest.with_suffix(".config.json"), json.dumps({"insert": asdict(config), "source": str(src),
                                                               "summary": asdict(summary)}, indent=2) + "\n")
    return summary


@dataclass
class DataConfig:
    """Stage 02: insertion strategies and the SFT datasets built from stage 01's collections."""

    preset_name: str = "smoke"  # the preset these values started from
    strategies: tuple[str, ...] = ("stall",)  # each gives a dataset inserted-<strategy>
    every_n: int = 4  # every_n strategy: a call before steps n, 2n, ...
    p: float = 0.2  # random strategy: probability per step
    max_calls: int = 2  # inserted calls per trajectory at most; -1 = no cap
    min_gap: int = 3  # steps between two inserted calls at least
    seed: int = 0  # random strategy, question and guidance phrasing
    expert: str = "reference"  # writes the hindsight guidance: reference (ORACLE) | openai:MODEL
    expert_base_url: str = "https://api.openai.com/v1"  # endpoint of an openai: expert
    hint_level: str = "description"  # reference expert: location | description | exact_edit
    val_fraction: float = 0.1  # instances held out for validation (by instance, not by row)
    split_seed: int = 0  # seed of the train/validation split
    tokenizer: str = "smollm2-135m"  # model spec whose tokenizer counts tokens for the statistics
    max_length: int = 3072  # the SFT max_length the lengths are compared against (each preset: SFT's own)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DataConfig:
        """A scale preset (smoke | small | full) with field overrides.

        >>> DataConfig.preset("smoke").tokenizer, DataConfig.preset("full").max_length
        ('tiny', 32768)
        """

        return resolve(cls, DATA_PRESETS, name, overrides)

    def insert_config(self, strategy: str) -> InsertConfig:
        return InsertConfig(strategy=strategy, every_n=self.every_n, p=self.p, max_calls=self.max_calls,
                            min_gap=self.min_gap, seed=self.seed)


DATA_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"tokenizer": "tiny", "max_length": SFT_PRESETS["smoke"]["max_length"], "val_fraction": 0.2},
    "small": {"tokenizer": "smollm2-135m", "max_length": SFT_PRESETS["small"]["max_length"],
              "strategies": ("stall", "every_n", "random")},
    "full": {"tokenizer": "Qwen/Qwen2.5-Coder-7B-Instruct", "max_length": SFT_PRESETS["full"]["max_length"],
             "expert": "openai:gpt-4.1",
                 "strategies": ("stall", "every_n", "random")},
}


def _make_expert(config: DataConfig) -> Expert:
    spec = f"reference:{config.hint_level}" if config.expert == "reference" else config.expert
    try:  # an openai: expert is shown the trajectory's own diff as its gold patch (hindsight)
        expert = make_expert(spec, config.seed, config.expert_base_url, show_gold_patch=True)
    except ValueError as exc:
        raise ValueError(f"data config: field 'expert' = {config.expert!r}: {exc}") from None
    if expert is None:
        raise ValueError("data config: field 'expert' = 'none': insertion needs an expert to write the guidance")
    return expert


def held_out_packages() -> list[str]:
    """Packages of the bundled test split: never training data."""

    return sorted({str(t.extra.get("package")) for t in load_bundled("test")})


def run_insertion(config: DataConfig, collect_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Stage 02: insert calls into collect_dir/expert_only/kept.jsonl with each strategy and
    build the datasets under out_dir/datasets/: `live` (stage 01's live collection),
    `inserted-<strategy>` for each strategy and `mixed` (live + the first strategy's rows).
    Writes out_dir/config.json and the per-row statistics; returns the summaries."""

    collect_dir, out_dir = Path(collect_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "config.json", json.dumps({"data": asdict(config), "collect_dir": str(collect_dir)},
                                                     indent=2) + "\n")
    held = held_out_packages()
    expert = _make_expert(config)
    live = [row_from_trajectory(t, "live", "live") for t in read_jsonl(collect_dir / "live" / "kept.jsonl")]
    sets: dict[str, list[dict[str, Any]]] = {"live": live}
    summaries = []
    for strategy in config.strategies:
        dest = out_dir / f"inserted_{strategy}.jsonl"
        summary = insert_file(collect_dir / "expert_only" / "kept.jsonl", dest, config.insert_config(strategy), expert)
        summaries.append(asdict(summary))
        sets[f"inserted-{strategy}"] = [row_from_trajectory(t, "inserted", strategy) for t in read_jsonl(dest)]
    if config.strategies:
        sets["mixed"] = live + sets[f"inserted-{config.strategies[0]}"]
    infos = {name: asdict(save_dataset(rows, out_dir / "datasets" / name, name, config.val_fraction,
                                       config.split_seed, held))
             for name, rows in sets.items() if rows}
    return {"insertion": summaries, "datasets": infos}


def dataset_statistics(config: DataConfig, out_dir: str | Path):
    """Per-row statistics of every dataset under out_dir/datasets (tokens counted with the
    preset's tokenizer) and the summary table; both saved beside the datasets."""
    from transformers import AutoTokenizer


    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.tokenizer))
    stats = stats_frame(Path(out_dir) / "datasets", tokenizer, config.max_length)
    stats.to_csv(Path(out_dir) / "stats.csv", index=False)
    table = stats_table(stats)
    table.to_csv(Path(out_dir) / "stats_table.csv")
    return stats, table


def dataset_figures(out_dir: str | Path, figures_dir: str | Path, run_id: str, max_length: int) -> list[Path]:
    """The three dataset figures, from out_dir/stats.csv only."""

    out_dir, figures_dir = Path(out_dir), Path(figures_dir)
    import pandas as pd

    chash = config_hash(out_dir / "config.json")
    stats = pd.read_csv(out_dir / "stats.csv")
    stats = stats[stats["dataset"] != "mixed"]  # the union of the others: plotting it double counts
    return [figures.dataset_expert_calls(stats, figures_dir / f"{run_id}_02_expert_calls.png", run_id, chash),
            figures.dataset_tokens_by_role(stats, figures_dir / f"{run_id}_02_tokens_by_role.png", run_id, chash),
            figures.dataset_lengths(stats, figures_dir / f"{run_id}_02_lengths.png", run_id, chash, max_length)]


def insertion_examples(path: str | Path, n: int = 3, next_actions: int = 2):
    """A table of inserted calls from an inserted_<strategy>.jsonl: the question, the guidance
    and the trajectory's own next actions (to check by eye that they agree)."""
    import pandas as pd

    rows = []
    for traj in read_jsonl(Path(path)):
        for call in traj.get("expert_calls", []):
            after = [action_summary(s.get("action")) for s in traj["steps"][call["step"] + 1: call["step"] + 1 + next_actions]]
            rows.append({"instance_id": traj["instance_id"], "step": call["step"], "question": call["question"],
                         "guidance": call["reply"], "next_actions": " ⟶ ".join(a[:80] for a in after)})
            if len(rows) >= n:
                return pd.DataFrame(rows)
    return pd.DataFrame(rows)


def _short(text: str, limit: int = 240) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " …"


def interface_example(collect_dir: str | Path, turns_around: int = 1):
    """One collected episode around its first expert call, written in both designs side by side:
    the same question and reply as an `ask_expert` tool call with `<expert_guidance>`, and as a
    `<<collaborate>>` token with `[Expert]:` (notebook 02). Everything else in an episode is the
    same under either interface."""
    import pandas as pd

    for path in sorted(Path(collect_dir).glob("*/kept.jsonl")):
        for traj in read_jsonl(path):
            call = next((c for c in traj.get("expert_calls", []) if not c.get("forced")), None)
            if call is None:
                continue
            body = traj["messages"][2:]
            ask = next(i for i, m in enumerate(body) if m["role"] == "assistant" and (
                COLLABORATE in str(m.get("content")) or "ask_expert" in str(m.get("content"))
                or any(t["function"]["name"] == "ask_expert" for t in m.get("tool_calls") or [])))
            text = str(body[ask].get("content") or "")
            thought = (text.split(call["question"].strip(), 1)[0] if COLLABORATE in text
                       else text.split("<tool_call>", 1)[0])
            def same(m: dict) -> dict:  # a turn that reads the same under either interface
                text = _short(str(m.get("content") or ""))
                return {"turn": m["role"], "tool interface": text, "token interface": text}

            rows = [same(m) for m in body[max(0, ask - 2 * turns_around):ask]]
            rows.append({"turn": "protégé asks",
                         "tool interface": _short(thought + render_ask(call["question"], "tool"), 400),
                         "token interface": _short(thought + render_ask(call["question"], "token"), 400)})
            rows.append({"turn": "the loop appends",
                         "tool interface": _short(render_guidance(call["reply"], "tool"), 400),
                         "token interface": _short(render_guidance(call["reply"], "token"), 400)})
            rows += [same(m) for m in body[ask + 2: ask + 2 + turns_around]]
            return pd.DataFrame(rows).set_index("turn")
    # a run may collect no ask at all (a tiny preset, a plan without asks): say so, do not fail the notebook
    note = f"no collected episode in {collect_dir} (*/kept.jsonl) asks the expert"
    return pd.DataFrame([{"turn": "-", "tool interface": note, "token interface": note}]).set_index("turn")
