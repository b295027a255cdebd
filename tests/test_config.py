"""Regression tests of issue 15's config bugs: one `key=value` parser, one expert factory,
one reward for the notebook and the CLI."""

import pytest
import typer

from protege.app import presets
from protege.app.cli_agent import make_expert as cli_expert
from protege.core import config
from protege.core.config import apply, notebook_config, parse_assignments
from protege.models.reference_expert import NoisyExpert
from protege.stages import rl_config
from protege.stages.evaluate_config import EvalConfig
from protege.stages.sft_config import SFTRunConfig


@pytest.mark.parametrize("raw", ["False", "false", "0"])
def test_a_false_override_is_false(raw):
    """`protege evaluate --set grade=False` once kept grading on ('False' is a truthy string)."""
    config = EvalConfig.preset("smoke", **parse_assignments([f"grade={raw}"]))
    assert not config.grade
    assert rl_config.RLRunConfig.preset("smoke", **parse_assignments([f"use_lora={raw}"])).use_lora in (False, 0)
    assert apply(SFTRunConfig(), [f"bf16={raw.lower() if raw != '0' else '0'}"]).bf16 is False


def test_the_agent_cli_accepts_every_expert_spec_evaluation_accepts():
    """`protege agent run --expert noisy:0.3` was refused although evaluation accepts it."""
    expert = cli_expert("noisy:0.3", "http://127.0.0.1:9/v1")
    assert isinstance(expert, NoisyExpert) and expert.p == 0.3 and expert.oracle
    assert cli_expert("reference:exact_edit", "").hint_level == "exact_edit"
    with pytest.raises(typer.BadParameter, match="unknown expert"):
        cli_expert("bogus", "")


@pytest.mark.parametrize("preset", sorted(rl_config.PRESETS))
def test_notebook_04_and_the_rl_cli_train_with_the_same_reward(preset):
    """Notebook 04's defaults once gave lambda_collab 0.1 where `protege rl --preset P` gave 0.05; now
    both read the reward preset's table, the one place a lambda default is defined."""
    from protege.stages.reward_config import REWARD_PRESETS

    notebook = notebook_config(rl_config.RLRunConfig, preset, {}, model=None, reward_preset="simple", lambda_loop=None,
                               lambda_collab=None)  # the notebook's parameters left at their defaults
    cli = rl_config.RLRunConfig.preset(preset)
    assert notebook.reward_config().to_dict() == cli.reward_config().to_dict()
    assert cli.reward_config().lambda_collab == REWARD_PRESETS["simple"]["lambda_collab"]


def test_a_field_given_as_a_parameter_and_in_overrides_is_a_clear_error():
    """Setting lambda_collab both as notebook 04's parameter and in `overrides` raised a TypeError."""
    with pytest.raises(ValueError, match="'lambda_collab' is set both as a notebook parameter"):
        notebook_config(rl_config.RLRunConfig, "smoke", {"lambda_collab": 0.3}, lambda_collab=0.2)
    same = notebook_config(rl_config.RLRunConfig, "smoke", {"lambda_collab": 0.2}, lambda_collab=0.2)
    assert same.reward_config().lambda_collab == 0.2


def test_the_presets_table_reads_every_stage_through_its_own_config_class():
    """One screen of scale knobs: its values are the stage configs' own, for every preset, and
    `protege presets` prints it."""
    from typer.testing import CliRunner

    from protege.app.cli import app
    from protege.app.presets import SCALE_KNOBS, presets_table, stage_config
    from protege.stages.evaluate_config import EvalConfig
    from protege.stages.rl_config import RLRunConfig

    rows = presets_table()
    assert {r["stage"] for r in rows} == set(SCALE_KNOBS) and len(rows) == sum(map(len, SCALE_KNOBS.values()))
    cell = {(r["stage"], r["knob"]): r for r in rows}
    assert cell["05 evaluate", "limit"]["small"] == EvalConfig.preset("small").limit == -1
    assert cell["04 rl", "max_steps"]["full"] == RLRunConfig.preset("full").max_steps
    assert cell["04 rl", "scale_rewards"] == {"stage": "04 rl", "knob": "scale_rewards", "smoke": "batch",
                                             "small": "batch", "full": "batch"}
    with pytest.raises(ValueError, match="unknown stage"):
        stage_config("06 nope", "small")
    out = CliRunner().invoke(app, ["presets"])
    assert out.exit_code == 0 and "| 03 sft | mode | lora | full | full |" in out.output


def test_the_readme_shows_the_current_presets_table():
    """The README's copy of `protege presets` is regenerated whenever a preset changes."""
    from pathlib import Path

    from protege.app.presets import presets_markdown

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert presets_markdown() in readme, "README's presets table is stale: paste `protege presets` into it"


@pytest.mark.parametrize("stage", sorted(presets.STAGE_CONFIGS))
def test_every_stage_config_resolves_through_the_one_mechanism(stage):
    """Each stage's preset constructor is config.resolve: typed strings, unknown keys named."""
    import dataclasses

    small = presets.stage_config(stage, "small")
    cls = type(small)
    build = cls.preset  # one constructor name for every stage
    int_field = next(f.name for f in dataclasses.fields(cls) if f.type in ("int", int) and f.name != "seed")
    typed = build("small", **{int_field: "7"})  # a string from a command line, converted to the field's type
    assert getattr(typed, int_field) == 7
    assert config.config_hash(typed) != config.config_hash(small) == config.config_hash(build("small"))
    with pytest.raises(ValueError, match=f"{cls.__name__}: unknown field 'no_such_knob'"):
        build("small", no_such_knob=1)
    with pytest.raises(ValueError, match="unknown preset 'medium'"):
        build("medium")


def test_dotted_keys_set_one_entry_of_a_nested_config():
    c = rl_config.RLRunConfig.preset("small", **{"reward_overrides.w_sim": "0.5", "agent_overrides.step_limit": 4})
    assert c.reward_overrides == {"charge_every_call": True, "w_sim": 0.5}  # the preset's entry is kept
    assert c.agent_overrides == {"repeat_limit": 5, "step_limit": 4}
    sft = config.apply(presets.stage_config("03 sft", "small"), ["epochs=2", "bf16=false"])
    assert (sft.epochs, sft.bf16) == (2.0, False)
    with pytest.raises(ValueError, match="field 'epochs' is float"):
        config.apply(sft, {"epochs": "two"})


def test_one_factory_builds_every_policy_the_cli_and_stages_name(tiny_tasks):
    """protege.models.factory.make_policy is the one place policies come from (issue 15): the agent
    CLI, collection's demonstrator and evaluation all call it, and refuse a bad spec the same way."""
    from contextlib import ExitStack

    from protege.app.cli_agent import make_policy as cli_policy
    from protege.models.demonstrator import ReferenceDemonstrator
    from protege.models.factory import make_policy
    from protege.models.policies import TransformersPolicy
    from protege.models.remote_policies import OpenAIPolicy
    from protege.models.scripted import ScriptedPolicy
    from protege.stages.collect import CollectConfig, _make_demonstrator
    from protege.stages.evaluate import make_policy as eval_policy

    tasks = tiny_tasks(2)
    assert isinstance(make_policy("scripted", tasks), ScriptedPolicy)
    demo = _make_demonstrator(CollectConfig(plan="compact", p_wrong=0.0), tasks, 3, ExitStack(), None)
    assert isinstance(demo, ReferenceDemonstrator) and (demo.plan, demo.p_wrong, demo.seed) == ("compact", 0.0, 3)
    remote = make_policy("openai:m", tasks, base_url="http://127.0.0.1:9/v1", max_new_tokens=77)
    assert isinstance(remote, OpenAIPolicy) and (remote.model, remote.max_tokens) == ("m", 77)
    cache: dict = {}
    config = EvalConfig.preset("smoke", max_new_tokens=9, temperature=0.0)
    first = eval_policy("transformers:tiny", tasks, config, seed=0, cache=cache)
    second = eval_policy("transformers:tiny", tasks, config, seed=1, cache=cache)
    assert isinstance(first, TransformersPolicy) and first.max_new_tokens == 9 and second.seed == 1
    assert second.model is first.model  # seeds of one model share its weights
    with pytest.raises(typer.BadParameter, match="unknown policy 'bogus'"):
        cli_policy("bogus", tasks, "")
    with pytest.raises(ValueError, match="collect config: field 'demonstrator' = 'bogus': unknown policy"):
        _make_demonstrator(CollectConfig(demonstrator="bogus"), tasks, 0, ExitStack(), None)
    with pytest.raises(ValueError, match="needs an ExitStack"):
        make_policy("transformers:tiny", tasks, serve="transformers")
