"""Trajectories: a versioned record of one episode, written atomically after every step.

Run folder layout::

    run_dir/trajectories/<instance_id>.json   one file per episode, rewritten after each step
    run_dir/trajectories.jsonl                one line per finished episode (the full record)
    run_dir/preds.jsonl                       SWE-bench predictions, one line per finished episode

The per-episode file is the source of truth: an episode is finished when its file has an
`exit_status`. The two .jsonl files are appended afterwards and repaired on the next start
(a torn last line is dropped, a missing line re-appended), so a batch killed at any moment
resumes without losing finished episodes or duplicating them.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from protege.core.actions import Action
from protege.core.paths import safe_name
from protege.core.protocols import Generation, Message

SCHEMA_VERSION = 1


@dataclass
class Step:
    index: int
    action: dict[str, Any] | None  # {"name", "arguments"}; None for a format or policy error
    observation: str
    text: str = ""  # the raw model output (empty for injected actions)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_s: float = 0.0  # this episode's share of the batched generate call
    execution_s: float = 0.0
    forced: bool = False  # injected by an invocation baseline, not chosen by the policy
    error: str | None = None  # "format" | "policy" | None


@dataclass
class ExpertCall:
    step: int
    question: str
    reply: str
    oracle: bool
    failed: bool = False
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    forced: bool = False
    duration_s: float = 0.0


@dataclass
class Tokens:
    """Tokens by role; protégé prompt tokens count the whole context at every step."""

    protege_prompt: int = 0
    protege_completion: int = 0
    expert_input: int = 0
    expert_output: int = 0

    @property
    def expert_share(self) -> float:
        """Expert tokens over all tokens (paper Fig. 3).

        >>> Tokens(80, 10, 8, 2).expert_share
        0.1
        """
        total = self.protege_prompt + self.protege_completion + self.expert_input + self.expert_output
        return (self.expert_input + self.expert_output) / total if total else 0.0


@dataclass
class Counts:
    steps: int = 0
    format_errors: int = 0
    policy_errors: int = 0
    expert_calls: int = 0
    failed_expert_calls: int = 0
    forced_asks: int = 0


@dataclass
class Trajectory:
    instance_id: str
    model: str = ""
    expert: str = ""
    schema_version: int = SCHEMA_VERSION
    messages: list[Message] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    expert_calls: list[ExpertCall] = field(default_factory=list)
    exit_status: str | None = None  # None while running; see protege.agent.config.EXIT_STATUSES
    error: str | None = None  # detail for env_error and policy_error exits
    patch: str = ""
    counts: Counts = field(default_factory=Counts)
    tokens: Tokens = field(default_factory=Tokens)
    cost_usd: float = 0.0
    wall_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)  # the resolved AgentConfig
    # Where the episode ran: backend, sandbox isolation and limits, and warnings such as
    # isolation="none" (model commands ran unisolated).
    environment: dict[str, Any] = field(default_factory=dict)
    # In memory only (token ids and log-probs for RL); never written to disk.
    generations: list[Generation] = field(default_factory=list, repr=False)

    @property
    def finished(self) -> bool:
        return self.exit_status is not None

    @property
    def actions(self) -> list[str]:
        """One-line action strings, as protege.core.loop_detection expects them."""
        return [Action(s.action["name"], s.action["arguments"]).summary() for s in self.steps if s.action]

    @property
    def action_keys(self) -> list[str]:
        """Every step as what it did, arguments included (`Action.key`); a format error as its text,
        so the same malformed output sent again is a repeat too. What repeats are counted on."""
        return [Action(s.action["name"], s.action["arguments"]).key() if s.action
                else "format-error " + " ".join((s.text or "").split())[:2000] for s in self.steps
                if s.action or s.error == "format"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, generations=[]))
        del data["generations"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"trajectory {data.get('instance_id')!r}: schema_version {version!r}, "
                             f"this code reads {SCHEMA_VERSION}")
        known = {f.name for f in fields(cls)} - {"generations"}
        data = {k: v for k, v in data.items() if k in known}
        data["steps"] = [Step(**s) for s in data.get("steps", [])]
        data["expert_calls"] = [ExpertCall(**c) for c in data.get("expert_calls", [])]
        data["counts"] = Counts(**data.get("counts", {}))
        data["tokens"] = Tokens(**data.get("tokens", {}))
        return cls(**data)

    def prediction(self) -> dict[str, str]:
        return {"instance_id": self.instance_id, "model_name_or_path": self.model, "model_patch": self.patch}


_C1_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x80, 0xA0)}


def to_json(obj: Any, **kwargs: Any) -> str:
    """JSON for records that hold model text: readable UTF-8; what is not valid Unicode (lone
    surrogates) is written by `atomic_write` / the .jsonl appends as a `\\uXXXX` escape,
    which json reads back as the same string (lossless)."""
    # C0 controls are escaped by JSON itself; C1 controls (8-bit CSI, OSC) are too, so that
    # `cat`-ing a record never drives a terminal.
    return json.dumps(obj, ensure_ascii=False, default=str, **kwargs).translate(_C1_ESCAPES)


def plain(value: Any) -> Any:
    """A JSON-ready copy: dict keys as strings, tuples as lists, sets as sorted lists, NaN as null,
    anything else that is not JSON (dtypes, enums, paths) as its string.

    >>> plain({"a": (1, float("nan")), 2: {"b", "a"}, "p": Path("x")})
    {'a': [1, None], '2': ['a', 'b'], 'p': 'x'}
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set) else items
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and os.replace: readers (and a restart
    after SIGKILL) see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl file; unparseable lines (a write torn by a kill) are skipped."""
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def load_trajectory(path: str | Path) -> Trajectory:
    return Trajectory.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _finished_files(run_dir: Path) -> dict[str, Path]:
    found = {}
    for path in sorted((run_dir / "trajectories").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("exit_status") is not None:
            found[data["instance_id"]] = path
    return found


def completed_ids(run_dir: str | Path) -> set[str]:
    """Instance ids whose episode finished in this run folder (resume skips them)."""
    return set(_finished_files(Path(run_dir)))


class TrajectoryWriter:
    """Writes trajectories of one run folder; thread-safe. Creating one repairs the .jsonl
    files left by an interrupted run."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "trajectories"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.run_dir / "trajectories.jsonl"
        self.preds = self.run_dir / "preds.jsonl"
        self._lock = threading.Lock()
        self.repair()

    def path(self, instance_id: str) -> Path:
        return self.dir / f"{safe_name(instance_id)}.json"

    def save(self, traj: Trajectory) -> None:
        atomic_write(self.path(traj.instance_id), to_json(traj.to_dict()))

    def finish(self, traj: Trajectory) -> None:
        """Save the finished record, then append it to both .jsonl files."""
        if not traj.finished:
            raise ValueError(f"trajectory {traj.instance_id!r} has no exit_status")
        self.save(traj)
        with self._lock:
            self._append(self.jsonl, traj.to_dict())
            self._append(self.preds, traj.prediction())

    @staticmethod
    def _append(path: Path, row: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(to_json(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def repair(self) -> None:
        """Make both .jsonl files hold exactly one valid line per finished trajectory file."""
        finished = _finished_files(self.run_dir)
        for path, make in ((self.jsonl, lambda d: d), (self.preds, lambda d: Trajectory.from_dict(d).prediction())):
            rows, seen = [], set()
            for row in read_jsonl(path):
                iid = row.get("instance_id")
                if iid in finished and iid not in seen:
                    seen.add(iid)
                    rows.append(row)
            missing = [iid for iid in finished if iid not in seen]
            rows += [make(json.loads(finished[iid].read_text(encoding="utf-8"))) for iid in missing]
            text = "".join(to_json(r) + "\n" for r in rows)
            if not path.exists() or path.read_text(encoding="utf-8", errors="surrogateescape") != text:
                atomic_write(path, text)
