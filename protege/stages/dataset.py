"""SFT datasets from trajectories: TRL's conversational tool-calling format, splits, statistics.

One row per resolved trajectory::

    {"messages": [...], "tools": "<JSON list of function schemas>",
     "instance_id", "package", "source": "live" | "inserted", "strategy", "n_expert_calls",
     "demonstrator", "oracle_demonstrator", "seed"}

`messages` follow TRL / OpenAI tool calling: an assistant turn is ``{"role": "assistant",
"content": <its reasoning>, "tool_calls": [{"type": "function", "function": {"name",
"arguments": <JSON string>}}]}`` and the result is ``{"role": "tool", "name", "content"}``
(expert guidance is the result of an ``ask_expert`` call). `arguments` and `tools` are JSON
strings so that Arrow does not merge the argument dicts of different tools into one struct
with null-filled keys; TRL parses a string `tools` column itself.

The agent loop shows the policy a text form of the same conversation (tool calls as
``<tool_call>`` JSON in the assistant text, results as user messages). `agent_messages` turns a
row back into exactly that form, so SFT trains on the token sequences the policy sees at
inference; `trl_messages` is its inverse on trajectories (the demonstrator's "Step k:"
bookkeeping prefix is dropped).

Folder written by `save_dataset`::

    out_dir/train.jsonl, out_dir/validation.jsonl    the rows
    out_dir/hf/                                       datasets.DatasetDict.save_to_disk
    out_dir/stats.csv                                 one line of statistics per row
    out_dir/config.json                               how it was built
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from protege.agent.loop import is_guidance
from protege.agent.tools import format_tool_call, parse_text, template_schemas
from protege.core.actions import SHORT_FORMAT_HELP, FormatError
from protege.core.protocols import Message
from protege.core.trajectory import atomic_write, read_jsonl

STEP_PREFIX = re.compile(r"^Step \d+:[ \t]*")
ROLES = ("system", "task", "protege", "observation", "guidance")


def _thought(text: str) -> str:
    """The assistant text before its tool call, without the demonstrator's step prefix.

    >>> _thought('Step 3: Read it.\\n<tool_call>\\n{"name": "submit", "arguments": {}}\\n</tool_call>')
    'Read it.'
    """
    head = text.split("<tool_call>", 1)[0]
    return STEP_PREFIX.sub("", head.strip(), count=1).strip()


def trl_messages(messages: list[Message]) -> list[Message]:
    """Agent-loop messages (a trajectory's `messages`) in TRL tool-calling form.

    >>> msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "t"},
    ...         {"role": "assistant", "content": 'Step 0: Look.\\n<tool_call>\\n{"name": "bash", "arguments": {"command": "ls"}}\\n</tool_call>'},
    ...         {"role": "user", "content": "a.py"}]
    >>> out = trl_messages(msgs)
    >>> out[2]["tool_calls"][0]["function"], out[3]["role"], out[3]["name"]
    ({'name': 'bash', 'arguments': '{"command": "ls"}'}, 'tool', 'bash')
    """
    out: list[Message] = []
    last_tool: str | None = None
    for i, msg in enumerate(messages):
        role, content = msg.get("role"), str(msg.get("content") or "")
        if role == "assistant":
            calls = msg.get("tool_calls")
            if calls:
                fn = calls[0].get("function", calls[0])
                args = fn.get("arguments")
                name, args = fn.get("name"), json.loads(args) if isinstance(args, str) else (args or {})
            else:
                parsed = parse_text(content)
                if isinstance(parsed, FormatError):  # a malformed turn stays plain text
                    out.append({"role": "assistant", "content": content})
                    last_tool = None
                    continue
                name, args = parsed.name, parsed.arguments
            out.append({"role": "assistant", "content": _thought(content), "tool_calls": [
                {"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]})
            last_tool = name
        elif role in ("user", "tool") and i >= 2 and last_tool is not None:
            out.append({"role": "tool", "name": last_tool, "content": content})
            last_tool = None
        else:
            out.append({"role": role, "content": content})
    return out


def agent_messages(messages: list[Message]) -> list[Message]:
    """TRL-form messages back in the text form the agent loop sends to the policy.

    >>> row = [{"role": "system", "content": "s"}, {"role": "user", "content": "t"},
    ...        {"role": "assistant", "content": "Look.", "tool_calls": [{"type": "function",
    ...         "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]},
    ...        {"role": "tool", "name": "bash", "content": "a.py"}]
    >>> [m["role"] for m in agent_messages(row)], agent_messages(row)[2]["content"].splitlines()[0]
    (['system', 'user', 'assistant', 'user'], 'Look.')
    """
    out: list[Message] = []
    for msg in messages:
        role, content = msg.get("role"), str(msg.get("content") or "")
        if role == "assistant" and msg.get("tool_calls"):
            fn = msg["tool_calls"][0].get("function", msg["tool_calls"][0])
            args = fn.get("arguments")
            args = json.loads(args) if isinstance(args, str) else (args or {})
            call = format_tool_call(fn["name"], args)
            out.append({"role": "assistant", "content": f"{content}\n{call}" if content else call})
        elif role == "tool":
            out.append({"role": "user", "content": content})
        else:
            out.append({"role": role, "content": content})
    return out


def role_of(messages: list[Message], i: int) -> str:
    """Which of ROLES message i of a TRL-form conversation plays (for token accounting)."""
    msg = messages[i]
    if msg["role"] == "system":
        return "system"
    if msg["role"] == "assistant":
        return "protege"
    if i > 1 and is_guidance(msg):  # a tool reply (ask_expert) or a user turn ("[Expert]:", the token interface)
        return "guidance"
    return "observation" if msg["role"] == "tool" or i > 1 else "task"


def n_expert_calls(messages: list[Message]) -> int:
    return sum(1 for m in messages[2:] if m.get("role") in ("tool", "user") and is_guidance(m))


def row_from_trajectory(traj: dict[str, Any], source: str, strategy: str) -> dict[str, Any]:
    """A dataset row from a kept (resolved) trajectory dict."""
    iid = traj.get("instance_id")
    messages = trl_messages(traj.get("messages") or [])
    if len(messages) < 3 or messages[0].get("role") != "system":
        raise ValueError(f"trajectory {iid!r}: field 'messages' must start with a system prompt and a task")
    ask = any(m.get("tool_calls") and m["tool_calls"][0]["function"]["name"] == "ask_expert" for m in messages)
    ask = ask or "ask_expert" in str(messages[0].get("content"))
    # The template got the schemas unless the system prompt described the tools itself (the
    # compact prompt, AgentConfig.tool_text = "short"): train on what the policy was shown.
    short = SHORT_FORMAT_HELP in str(messages[0].get("content"))
    return {
        "messages": messages,
        "tools": json.dumps(template_schemas(ask, "short" if short else "full")),
        "instance_id": iid,
        "package": traj.get("package") or str(iid).split("__")[-1].rsplit("-", 1)[0],
        "source": source,
        "strategy": strategy,
        "n_expert_calls": n_expert_calls(messages),
        "demonstrator": traj.get("model", ""),
        "oracle_demonstrator": bool(traj.get("oracle_demonstrator", False)),
        "seed": int(traj.get("demonstrator_seed", 0) or 0),
        "split": traj.get("split", ""),
    }


def split_rows(rows: list[dict[str, Any]], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Train / validation by instance id, so that no instance is on both sides (its live and
    inserted versions go together).

    >>> rows = [{"instance_id": f"i{k % 10}"} for k in range(20)]
    >>> tr, va = split_rows(rows, 0.2, seed=0)
    >>> len(va), not {r["instance_id"] for r in tr} & {r["instance_id"] for r in va}
    (4, True)
    """
    ids = sorted({r["instance_id"] for r in rows})
    random.Random(seed).shuffle(ids)
    n_val = round(len(ids) * val_fraction) if val_fraction > 0 else 0
    if val_fraction > 0 and len(ids) > 1:
        n_val = min(max(n_val, 1), len(ids) - 1)
    val = set(ids[:n_val])
    return [r for r in rows if r["instance_id"] not in val], [r for r in rows if r["instance_id"] in val]


@dataclass
class DatasetInfo:
    name: str
    n_train: int
    n_validation: int
    sources: dict[str, int]
    val_fraction: float
    seed: int
    held_out_packages: list[str]


def check_no_held_out(rows: Iterable[dict[str, Any]], held_out: Iterable[str], where: str) -> None:
    """Refuse any row of a held-out (test-split) package, or marked as from the test split.

    >>> check_no_held_out([{"instance_id": "b__gridlib-0001", "package": "gridlib"}], ["gridlib"], "x")
    Traceback (most recent call last):
    ...
    ValueError: x: instance 'b__gridlib-0001' (field 'package' = 'gridlib') belongs to the held-out test split
    """
    held = set(held_out)
    for row in rows:
        if row.get("package") in held or row.get("split") == "test":
            raise ValueError(f"{where}: instance {row.get('instance_id')!r} (field 'package' = "
                             f"{row.get('package')!r}) belongs to the held-out test split")


def save_dataset(rows: list[dict[str, Any]], out_dir: str | Path, name: str, val_fraction: float = 0.1,
                 seed: int = 0, held_out: Iterable[str] = ()) -> DatasetInfo:
    """Write train/validation JSONL and an HF DatasetDict; returns what was written."""
    import datasets

    out_dir = Path(out_dir)
    held = sorted(set(held_out))
    check_no_held_out(rows, held, str(out_dir))
    train, val = split_rows(rows, val_fraction, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, part in (("train", train), ("validation", val)):
        atomic_write(out_dir / f"{split}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    dd = datasets.DatasetDict({split: datasets.Dataset.from_list(part) if part else
                               datasets.Dataset.from_dict({"messages": [], "tools": []})
                               for split, part in (("train", train), ("validation", val))})
    quiet = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per split and dataset drowns the notebook output
    try:
        dd.save_to_disk(str(out_dir / "hf"))
    finally:
        if quiet:
            datasets.enable_progress_bars()
    sources: dict[str, int] = {}
    for r in rows:
        sources[r["source"]] = sources.get(r["source"], 0) + 1
    info = DatasetInfo(name, len(train), len(val), sources, val_fraction, seed, held)
    atomic_write(out_dir / "config.json", json.dumps(asdict(info), indent=2) + "\n")
    return info


def load_split(data_dir: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """Rows of one split of a saved dataset (the JSONL copy)."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no {split} split here (write it with protege.stages.dataset.save_dataset)")
    return read_jsonl(path)


def row_stats(row: dict[str, Any], tokenizer: Any = None) -> dict[str, Any]:
    """Token counts of one row by role, and its rendered length (what SFT compares with
    max_length). Without a tokenizer, tokens are estimated as characters / 4."""
    msgs = row["messages"]
    agent = agent_messages(msgs)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids) if tokenizer is not None else len(text) // 4

    by_role = dict.fromkeys(ROLES, 0)
    for i, msg in enumerate(agent):
        by_role[role_of(msgs, i)] += count(str(msg.get("content") or ""))
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(agent, tools=json.loads(row["tools"]), tokenize=False)
        length = count(rendered)
    else:
        length = sum(by_role.values()) + 4 * len(agent)
    return {"instance_id": row["instance_id"], "package": row.get("package"), "source": row["source"],
            "strategy": row["strategy"], "n_expert_calls": row["n_expert_calls"],
            "n_turns": sum(1 for m in msgs if m["role"] == "assistant"),
            **{f"tokens_{k}": v for k, v in by_role.items()}, "length": length}


def stats_frame(datasets_dir: str | Path, tokenizer: Any = None, max_length: int = -1):
    """One row of statistics per (dataset, split, row) of every dataset folder under
    datasets_dir; also written to each folder's stats.csv."""
    import pandas as pd

    frames = []
    for folder in sorted(p for p in Path(datasets_dir).iterdir() if (p / "config.json").exists()):
        rows = []
        for split in ("train", "validation"):
            for r in load_split(folder, split):
                rows.append({"dataset": folder.name, "split": split, **row_stats(r, tokenizer)})
        df = pd.DataFrame(rows)
        if max_length > 0 and len(df):
            df["over_max_length"] = df["length"] > max_length
        df.to_csv(folder / "stats.csv", index=False)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def stats_table(stats):
    """Per dataset: rows, expert calls per trajectory, mean tokens by role, lengths."""
    if stats.empty:
        return stats
    g = stats.groupby("dataset")
    table = g.agg(rows=("instance_id", "size"), instances=("instance_id", "nunique"),
                  calls_per_traj=("n_expert_calls", "mean"),
                  with_calls=("n_expert_calls", lambda s: float((s > 0).mean())),
                  turns=("n_turns", "mean"), **{f"tok_{r}": (f"tokens_{r}", "mean") for r in ROLES},
                  length_mean=("length", "mean"), length_max=("length", "max"))
    if "over_max_length" in stats:
        table["over_max_length"] = g["over_max_length"].mean()
    return table.round(3)
