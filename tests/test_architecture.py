"""The package's shape (issue 38): imports at module heads, one source for cross-stage values, a
`full` preset that says what it trains on, a README that stays a user guide. The layer and cycle
contracts themselves are import-linter's (`make lint`, in CI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from protege.stages.collect import CollectConfig
from protege.stages.evaluate_config import EvalConfig
from protege.stages.insert_datasets import DataConfig
from protege.stages.rl_config import RLRunConfig
from protege.stages.sft_config import SFTRunConfig

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "protege"


def _modules():
    return [p for p in PACKAGE.rglob("*.py") if "packages" not in p.parts]


def test_internal_imports_sit_at_module_heads():
    """119 of ~209 internal imports once sat inside functions, hiding the graph (and a cycle)."""
    lazy = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        lazy += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("protege") and id(n) not in top]
    assert lazy == []


@pytest.mark.parametrize("preset", ["smoke", "small", "full"])
def test_stage_02_measures_lengths_against_the_sft_budget(preset):
    """Stage 02's small max_length was 4096, "the same as" SFT's, which was 1024."""
    assert DataConfig.preset(preset).max_length == SFTRunConfig.preset(preset).max_length


def test_the_full_rl_preset_trains_on_real_tasks_with_a_real_expert():
    """The full RL preset once set no tasks, expert or backend: bundled tasks and the ORACLE on the
    local backend, while collection and evaluation used SWE-Gym / SWE-bench and an API expert."""
    rl = RLRunConfig.preset("full")
    assert (rl.tasks, rl.expert, rl.backend) == (CollectConfig.preset("full").tasks, EvalConfig.preset("full").expert,
                                                 EvalConfig.preset("full").backend)
    with pytest.raises(ValueError, match="ORACLE.*allow_oracle=True"):
        RLRunConfig.preset("full", expert="reference").validate()
    RLRunConfig.preset("full", expert="reference", allow_oracle=True).validate()  # asked for: allowed
    RLRunConfig.preset("small").validate()  # the laptop presets' documented oracle


def test_every_config_records_its_preset_and_builds_the_same_way():
    for cls in (CollectConfig, DataConfig, SFTRunConfig, RLRunConfig, EvalConfig):
        assert cls.preset("small").preset_name == "small"
        assert cls.preset("small", seeds=None) == cls.preset("small")  # None keeps the preset's value


def test_the_readme_is_a_user_guide():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for stage in ("collect", "insert_calls", "sft", "rl", "evaluate", "figures"):
        assert f"protege.stages.{stage}" in readme, stage
