"""Stage 04 RL: one training sequence per multi-turn episode with an env_mask, TRL's loss gives
masked (observation / guidance) tokens no gradient, and a smoke GRPO run on the tiny model
logs every reward term, changes the trained weights and resumes from its checkpoint."""

import json
from functools import partial

import pytest
import torch

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.core.config import notebook_config
from protege.env.factory import make_environment
from protege.models.reference_expert import ReferenceExpert
from protege.models.registry import tiny_dir
from protege.models.scripted import ScriptedPolicy
from protege.stages import rl, rl_config, rl_rollout, rl_sequences
from protege.stages.rewards import component_reward


def cli_app(argv):
    """The `protege` command in-process (its value returned, its errors raised)."""
    from protege.app.cli import app

    return app(argv, standalone_mode=False)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir())


def decoder(tokenizer):
    return lambda ids, skip: tokenizer.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False)


class CanonicalPolicy:
    """The scripted oracle, with the token ids a local model would report: the prompt rendered
    by the chat template and the canonical tokens of the text plus the end-of-turn token."""

    name = "canonical-scripted"

    def __init__(self, tasks, tokenizer):
        self.inner, self.tok = ScriptedPolicy(tasks), tokenizer

    def generate(self, conversations, tools):
        gens = self.inner.generate(conversations, tools)
        for conv, gen in zip(conversations, gens):
            text = self.tok.apply_chat_template(conv, tools=tools or None, tokenize=False, add_generation_prompt=True)
            gen.prompt_ids = self.tok(text, add_special_tokens=False).input_ids
            gen.completion_ids = self.tok(gen.text + "<|im_end|>", add_special_tokens=False).input_ids
            gen.logprobs = [-0.5] * len(gen.completion_ids)
        return gens


@pytest.fixture(scope="module")
def scripted_episode(tiny_repo, tokenizer):
    from protege.env.base import EnvConfig, RepoSource

    repo, task = tiny_repo
    env_config = EnvConfig(repos=RepoSource(mirror_template=str(repo)))
    config = AgentConfig.preset("smoke", max_context_tokens=-1)
    return run_episodes([task], CanonicalPolicy([task], tokenizer), ReferenceExpert(),
                        partial(make_environment, config=env_config), config)[0]


def spans(mask):
    """(start, end, value) runs of a 0/1 mask."""
    out, start = [], 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[start]:
            out.append((start, i, mask[start]))
            start = i
    return out


def test_sequence_of_a_real_episode_is_exact_and_masks_observations(scripted_episode, tokenizer):
    traj, decode = scripted_episode, decoder(tokenizer)
    gens = traj.generations
    assert traj.exit_status == "submitted" and len(gens) == traj.counts.steps >= 6 and traj.expert_calls
    seq = rl_sequences.episode_sequence(gens, decode)
    assert (seq.turns, seq.turns_total, seq.retokenized, seq.approximate, seq.stop) == (len(gens), len(gens), 0, 0, "")
    assert len(seq.completion_ids) == len(seq.env_mask) == len(seq.logprobs)
    full = seq.prompt_ids + seq.completion_ids
    # Every turn's real prompt is exactly the sequence so far, and its completion follows it.
    for gen in gens:
        assert full[: len(gen.prompt_ids)] == gen.prompt_ids
        assert full[len(gen.prompt_ids): len(gen.prompt_ids) + len(gen.completion_ids)] == gen.completion_ids
    assert seq.prompt_ids == gens[0].prompt_ids
    assert sum(seq.env_mask) == sum(len(g.completion_ids) for g in gens)
    runs = spans(seq.env_mask)
    trained = [decode(seq.completion_ids[a:b], False) for a, b, v in runs if v == 1]
    masked = [decode(seq.completion_ids[a:b], False) for a, b, v in runs if v == 0]
    assert trained == [g.text + "<|im_end|>" for g in gens]
    assert len(masked) == len(gens) - 1 and all(m.strip().startswith("<|im_start|>user") for m in masked)
    assert all(m.endswith("<|im_start|>assistant\n") for m in masked)
    assert any("<expert_guidance>" in m for m in masked) and any("passed" in m or "failed" in m for m in masked)
    assert all(lp == 0.0 for lp, m in zip(seq.logprobs, seq.env_mask) if m == 0)
    assert all(lp == -0.5 for lp, m in zip(seq.logprobs, seq.env_mask) if m == 1)
    # A length cap stops the sequence at a turn boundary.
    capped = rl_sequences.episode_sequence(gens, decode, max_tokens=len(gens[2].prompt_ids) + len(gens[2].completion_ids))
    assert capped.turns == 3 and capped.stop == "max_tokens"
    assert capped.prompt_ids + capped.completion_ids == gens[2].prompt_ids + gens[2].completion_ids


def test_sequence_of_sampled_turns_keeps_generated_tokens_in_order(tiny_task, env_config, tokenizer):
    from protege.models.policies import TransformersPolicy

    policy = TransformersPolicy(tiny_dir(), max_new_tokens=12, temperature=1.0, seed=3, return_logprobs=True)
    config = AgentConfig.preset("smoke", step_limit=3, max_context_tokens=-1)
    traj = run_episodes([tiny_task], policy, ReferenceExpert(), partial(make_environment, config=env_config),
                        config)[0]
    seq = rl_sequences.episode_sequence(traj.generations, decoder(tokenizer))
    gens = traj.generations[: seq.turns]
    assert seq.turns >= 1 and seq.prompt_ids == gens[0].prompt_ids
    trained = [seq.completion_ids[a:b] for a, b, v in spans(seq.env_mask) if v == 1]
    assert [t for ids in trained for t in ids] == [t for g in gens for t in g.completion_ids]
    lps = [lp for lp, m in zip(seq.logprobs, seq.env_mask) if m == 1]
    assert lps == pytest.approx([lp for g in gens for lp in g.logprobs])
    assert all(lp < 0 for lp in lps)


# ------------------------------------------------------------------- TRL's loss and mask


def _trainer(rollout_func, beta, out_dir):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    tok = AutoTokenizer.from_pretrained(tiny_dir())
    model = AutoModelForCausalLM.from_pretrained(tiny_dir())
    args = GRPOConfig(output_dir=str(out_dir), use_cpu=True, bf16=False, report_to=[],
                      per_device_train_batch_size=2, num_generations=2, beta=beta, epsilon=0.2, epsilon_high=0.28,
                      gradient_checkpointing=False, logging_steps=1, disable_dropout=True)
    with pytest.warns(UserWarning, match="rollout_func"):
        return GRPOTrainer(model=model, reward_funcs=[component_reward("task")], args=args,
                           train_dataset=Dataset.from_dict({"prompt": ["p"]}), processing_class=tok,
                           rollout_func=rollout_func)


def test_env_masked_tokens_get_no_gradient_in_trls_loss(scripted_episode, tokenizer, tmp_path, beta=0.05):
    """The episode's sequence goes through TRL's own rollout_func path (padding, env_mask ->
    tool_mask, advantages) and TRL's loss (with the KL term): the gradient w.r.t. the log-prob
    of every masked token is exactly zero, and no masked-position input changes the loss."""
    seq = rl_sequences.episode_sequence(scripted_episode.generations[:3], decoder(tokenizer))
    short = rl_sequences.EpisodeSequence(seq.prompt_ids[:40], seq.completion_ids[:30], seq.logprobs[:30], seq.env_mask[:30])
    seqs = [seq, short]

    def rollout(prompts, trainer):
        return {"prompt_ids": [s.prompt_ids for s in seqs], "completion_ids": [s.completion_ids for s in seqs],
                "logprobs": [s.logprobs for s in seqs], "env_mask": [s.env_mask for s in seqs],
                "reward_task": [1.0, -0.1]}

    trainer = _trainer(rollout, beta, tmp_path)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    inputs = trainer._generate_and_score_completions([{"prompt": "p"}, {"prompt": "p"}])
    mask = inputs["completion_mask"] * inputs["tool_mask"]
    assert inputs["tool_mask"][0].tolist() == seq.env_mask
    assert inputs["advantages"].abs().min() > 0.5  # rewards 1.0 vs -0.1: a real signal both ways
    assert (mask == 0).sum() > 100 and (mask == 1).sum() > 100

    captured = {}
    original = trainer._get_per_token_logps_and_entropies

    def capture(*args, **kwargs):
        logps, entropies, aux = original(*args, **kwargs)
        if torch.is_grad_enabled():
            logps.retain_grad()
            captured["logps"] = logps
        return logps, entropies, aux

    trainer._get_per_token_logps_and_entropies = capture
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    grad = captured["logps"].grad
    assert torch.all(grad[mask == 0] == 0)  # exactly zero: masked tokens are never trained on
    assert (grad[mask == 1] != 0).float().mean() > 0.99
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.model.parameters())

    def loss_with(**replace):
        with torch.no_grad():
            return trainer._compute_loss(trainer.model, {**inputs, **replace}).item()

    base = captured["logps"].detach()
    noise = torch.randn_like(base) * 3
    masked_noise = torch.where(mask == 0, noise, torch.zeros_like(noise))
    reference = loss_with(old_per_token_logps=base)
    assert loss_with(old_per_token_logps=base + masked_noise) == pytest.approx(reference, abs=1e-7)
    assert loss_with(old_per_token_logps=base + noise) != pytest.approx(reference, abs=1e-4)
    if beta:
        ref = inputs["ref_per_token_logps"]
        assert loss_with(old_per_token_logps=base, ref_per_token_logps=ref + masked_noise) == pytest.approx(
            loss_with(old_per_token_logps=base, ref_per_token_logps=ref), abs=1e-7)


# ------------------------------------------------------------------------ a smoke run


def varied(completions, **kwargs):
    """A test-only reward with variance across a group: an untrained tiny model earns the same
    task reward in every episode, which gives GRPO a zero advantage and no update."""
    return [(sum(map(ord, c)) % 97) / 97 for c in completions]


SMOKE = {"task_sample": 1, "step_limit": 2, "max_new_tokens": 12, "learning_rate": 3e-3, "eval_limit": 1,
         "save_trajectories": True}


def test_smoke_rl_run_logs_terms_changes_weights_and_resumes(tmp_path, capsys):
    from safetensors.torch import load_file

    from protege.models.policies import TransformersPolicy

    out = tmp_path / "04_rl"
    config = rl_config.RLRunConfig.preset("smoke", **{**SMOKE, "max_steps": 1})
    first = rl.train(config, out, extra_reward_funcs=[varied])
    assert first.steps == 1 and (out / "checkpoints" / "checkpoint-1").is_dir()
    printed = capsys.readouterr().out
    assert "episodes/s" in printed and "tok/s" in printed

    # An interrupted later step left a row behind: resuming drops it and redoes the step.
    with (out / "steps.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 2, "reward_total": 99.0}) + "\n")
    args = ["--preset", "smoke", "--out", str(out)] + [f"--set={k}={json.dumps(v)}" for k, v in SMOKE.items()]
    second = cli_app(["rl", *args, "--set", "max_steps=2"])
    assert "resuming from" in capsys.readouterr().out
    assert second.steps == 2

    steps = rl.load_steps(out)
    assert steps["step"].tolist() == [1, 2] and 99.0 not in steps["reward_total"].tolist()
    for column in ("reward_total", "reward_task", "reward_loop", "reward_collab", "c_loop", "c_collab",
                   "resolve_rate", "loop_rate", "expert_calls", "steps", "episodes_per_s", "gen_tokens_per_s",
                   "trl/loss", "trl/rewards/task/mean", "trl/clip_ratio/high_max"):
        assert column in steps and steps[column].notna().all(), column
    assert steps["trl/rewards/varied/mean"].notna().tolist() == [True, False]  # the CLI run has no test reward
    assert (steps["episodes"] == 2).all() and (steps["reward_task"] == -0.1).all()
    assert (steps["groups_with_spread"] == 0.0).all()  # equal rewards in each group: no advantage to learn from
    assert (out / "steps.csv").read_text().startswith("step,")
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rollouts] == [1, 1, 2, 2]
    assert all(r["sequence"]["trained_tokens"] > 0 and "reward_total" in r["terms"] for r in rollouts)
    assert len(list((out / "trajectories").glob("step-*/*.json"))) == 4
    saved = json.loads((out / "config.json").read_text())
    assert saved["rl"]["max_steps"] == 2 and saved["reward"]["preset_name"] == "simple"
    assert (out / "curves.png").stat().st_size > 10_000

    # Trainable weights moved; the final folder is a merged model the policy loads.
    before = load_file(tiny_dir() / "model.safetensors")
    after = load_file(out / "final" / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    policy = TransformersPolicy(out / "final", max_new_tokens=4, temperature=0)
    assert len(policy.generate([[{"role": "user", "content": "hi"}]], [])) == 1

    # Done: a third call returns at once; before/after evaluation on one held-out task.
    assert rl.train(rl_config.RLRunConfig.preset("smoke", **{**SMOKE, "max_steps": 2}), out).steps == 2
    table = rl.evaluate_before_after(config, out)
    assert table["label"].tolist() == ["before", "after"] and set(table["resolve_rate"]) <= {0.0, 1.0}
    assert {"loop_rate", "repeat_rate", "expert_calls", "steps"} <= set(table.columns)
    assert (out / "eval" / "before_after.csv").exists()


def test_config_presets_validate_and_reject_bad_settings():
    for name in rl_config.PRESETS:
        config = rl_config.RLRunConfig.preset(name)
        config.validate()
        assert (config.epsilon, config.epsilon_high) == (0.20, 0.28)
        assert config.agent_config().max_context_tokens == -1
    assert rl_config.RLRunConfig.preset("full").beta > 0 and not rl_config.RLRunConfig.preset("full").use_lora
    with pytest.raises(ValueError, match="RLRunConfig: unknown field"):
        rl_config.RLRunConfig.preset("smoke", lamda_loop=0.1)
    with pytest.raises(ValueError, match="num_generations"):
        rl_config.RLRunConfig.preset("smoke", num_generations=1).validate()
    with pytest.raises(ValueError, match="micro_batch_size"):
        rl_config.RLRunConfig.preset("smoke", micro_batch_size=3).validate()
    with pytest.raises(ValueError, match="RewardConfig: unknown field"):
        rl_config.RLRunConfig.preset("smoke", **{"reward_overrides.nope": 1}).validate()
    nb = notebook_config(rl_config.RLRunConfig, "smoke", {"max_steps": 5}, model=rl_config.sft_model("/nonexistent"),
                         reward_preset="paper", lambda_loop=0.3, lambda_collab=0.2)
    assert (nb.model, nb.reward_config().preset_name, nb.reward_config().lambda_loop, nb.max_steps) == (
        "tiny", "paper", 0.3, 5)


def test_rollout_scoring_paper_preset_grades_judges_and_returns_columns(scripted_episode, tiny_repo, tokenizer,
                                                                         tmp_path, capsys):
    """The rollout's scoring half on two copies of a real resolved episode: real grading, the
    heuristic judge, the paper reward at stage II, one sequence per episode, one column per term."""
    from protege.env.base import EnvConfig, RepoSource
    from protege.models.judges import HeuristicJudge

    repo, task = tiny_repo
    config = rl_config.RLRunConfig.preset("smoke", reward_preset="paper", max_steps=2)
    rollout = rl_rollout.AgentRollout(config, [task], tokenizer, str(tiny_dir()), tmp_path, ReferenceExpert(),
                              HeuristicJudge(), EnvConfig(repos=RepoSource(mirror_template=str(repo))))
    assert rollout.task_of(rl_rollout.task_prompt(task)) is task
    timed = rl_rollout._TimedPolicy(CanonicalPolicy([task], tokenizer))
    out = rollout.score([task, task], [scripted_episode, scripted_episode], step=2, max_steps=2, rollout_s=2.0,
                        timed=timed)
    assert {"prompt_ids", "completion_ids", "logprobs", "env_mask"} <= set(out)
    assert all(len(out[k]) == 2 for k in out)
    assert out["resolved"] == [1.0, 1.0] and out["stage"] == [2.0, 2.0] and out["n_calls"] == [1.0, 1.0]
    assert out["reward_total"] == pytest.approx([3.3, 3.3])  # 2.0 * R_follow + (1 + 0.3 * R_expert)
    assert [out[f"reward_{c}"][0] for c in ("loop", "follow", "gated_other", "no_call")] == pytest.approx(
        [0.0, 2.0, 1.3, 0.0])
    stats = rollout.pending[2]
    assert stats["resolve_rate"] == 1.0 and stats["episodes_per_s"] == 1.0 and stats["turns_dropped"] == 0
    assert "step 2: 2 episodes" in capsys.readouterr().out
    row = json.loads((tmp_path / "rollouts.jsonl").read_text().splitlines()[0])
    assert row["judge"] == [{"warranted": 1.0, "followed": 1.0, "source": "heuristic"}]
    assert row["grade_status"] == "RESOLVED_FULL" and row["sequence"]["stop"] == ""


class EngineOnTinyModel:
    """vLLM's `LLM.generate` contract (RequestOutput-like objects: token ids, per-token
    {token: Logprob} dicts, finish reason), computed by the tiny transformers model: sampled at
    the requested temperature, log-probs of the tempered distribution (processed_logprobs)."""

    def __init__(self):
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(tiny_dir(), dtype=torch.float32).eval()
        self.calls = 0

    def generate(self, prompts, params, use_tqdm=True):
        from types import SimpleNamespace

        self.calls += 1
        outs = []
        for p in prompts:
            ids = torch.tensor([p["prompt_token_ids"]])
            with torch.inference_mode():
                out = self.model.generate(ids, do_sample=True, temperature=params["temperature"], top_k=0,
                                          max_new_tokens=params["max_tokens"], return_dict_in_generate=True,
                                          output_logits=True, pad_token_id=0)
            tokens = out.sequences[0, ids.shape[1]:].tolist()
            steps = [{t: SimpleNamespace(logprob=torch.log_softmax(lg[0] / params["temperature"], -1)[t].item(),
                                         rank=1)} for t, lg in zip(tokens, out.logits)]
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=tokens, logprobs=steps,
                                                                 finish_reason="length")]))
        return outs


def test_rollouts_generate_with_trls_colocated_vllm_engine(tiny_repo, tokenizer, tmp_path, monkeypatch):
    """use_vllm: the rollout takes the engine TRL colocates (trainer.vllm_generation.llm) and runs
    our agent loop on it through VLLMEnginePolicy; the returned log-probs are the engine's, for
    exactly the token ids TRL trains on. The engine here honours vLLM's contract with the tiny model."""
    from types import SimpleNamespace

    from protege.env.base import EnvConfig, RepoSource
    from protege.models.remote_policies import VLLMEnginePolicy

    repo, task = tiny_repo
    engine = EngineOnTinyModel()
    policy = VLLMEnginePolicy(engine, tokenizer, max_new_tokens=6, temperature=0.8, params_factory=dict)
    [gen] = policy.generate([[{"role": "user", "content": "Fix the failing test."}]], [])
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Fix the failing test."}], tokenize=False,
                                         add_generation_prompt=True)
    assert gen.prompt_ids == tokenizer(text, add_special_tokens=False).input_ids
    assert len(gen.completion_ids) == len(gen.logprobs) == gen.completion_tokens == 6 and gen.finish_reason == "length"
    with torch.inference_mode():  # the same tokens re-scored by a forward pass, tempered
        logits = engine.model(torch.tensor([gen.prompt_ids + gen.completion_ids])).logits[0]
    expected = torch.log_softmax(logits[len(gen.prompt_ids) - 1:-1] / 0.8, -1).gather(
        1, torch.tensor(gen.completion_ids)[:, None]).squeeze(1)
    assert torch.allclose(torch.tensor(gen.logprobs), expected, atol=1e-4)

    config = rl_config.RLRunConfig.preset("smoke", max_steps=1, use_vllm=True, max_new_tokens=6, step_limit=2)
    config.validate()
    rollout = rl_rollout.AgentRollout(config, [task], tokenizer, str(tiny_dir()), tmp_path, ReferenceExpert(), None,
                              EnvConfig(repos=RepoSource(mirror_template=str(repo))), verbose=False)
    trainer = SimpleNamespace(use_vllm=True, vllm_generation=SimpleNamespace(llm=engine),
                              state=SimpleNamespace(global_step=0, max_steps=1))
    # vllm is not installed here: plain dicts stand in for vllm.SamplingParams (in the policy the rollout builds)
    monkeypatch.setattr(rl_rollout, "VLLMEnginePolicy", partial(VLLMEnginePolicy, params_factory=dict))
    out = rollout([rl_rollout.task_prompt(task)] * 2, trainer)
    assert {"prompt_ids", "completion_ids", "logprobs", "env_mask"} <= set(out) and len(out["prompt_ids"]) == 2
    assert engine.calls >= 1
    for ids, logprobs, mask in zip(out["completion_ids"], out["logprobs"], out["env_mask"]):
        assert len(ids) == len(logprobs) == len(mask) and sum(mask) > 0
    rows = [json.loads(line) for line in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    saved = [json.loads(p.read_text()) for p in (tmp_path / "trajectories").rglob("*.json")]
    assert len(saved) == 2 and all(t["model"].endswith("(vllm)") for t in saved)


def test_vllm_server_mode_is_refused_and_grpo_config_gets_the_vllm_settings():
    with pytest.raises(ValueError, match="colocate"):
        rl_config.RLRunConfig.preset("smoke", use_vllm=True, vllm_mode="server").validate()
    full = rl_config.RLRunConfig.preset("full")
    assert full.use_vllm and full.vllm_mode == "colocate"
