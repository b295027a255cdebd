"""Reward terms of both presets, the judges, and the TRL reward functions. Deterministic: the
scripted oracle policy and the reference expert give real trajectories with known shape."""

import json
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from protege.agent.config import AgentConfig
from protege.agent.loop import run_episodes
from protege.env.factory import make_environment
from protege.env.grading import grade
from protege.models import judges
from protege.models.factory import make_judge
from protege.models.judges import CallView, JudgeScore
from protege.models.reference_expert import ReferenceExpert
from protege.stages import reward_config
from protege.stages import reward_terms_paper as paper_terms
from protege.stages import rewards as R
from protege.stages.reward_config import RewardConfig
from protege.stages.rewards import EpisodeFacts, reward_terms

SIMPLE = RewardConfig.preset("simple")
PAPER = RewardConfig.preset("paper")


# ----------------------------------------------------------------------- configuration


def test_presets_and_overrides():
    assert (SIMPLE.lambda_loop, SIMPLE.lambda_collab, SIMPLE.r_resolved, SIMPLE.r_unresolved) == (0.1, 0.05, 1.0, -0.1)
    assert (PAPER.lambda_loop, PAPER.loop_k1, PAPER.loop_k2, PAPER.loop_floor) == (0.5, 15, 8, -10.0)
    assert (PAPER.w_expert, PAPER.w_follow, PAPER.tau_follow, PAPER.p_follow_low) == (0.3, 2.0, 0.5, -2.0)
    assert RewardConfig.preset("simple", lambda_loop=0.3, lambda_collab=None).lambda_collab == 0.05
    with pytest.raises(ValueError, match="RewardConfig: unknown preset 'ppo'"):
        RewardConfig.preset("ppo")
    with pytest.raises(ValueError, match="w_simm"):
        RewardConfig.preset("paper", w_simm=1.0)
    assert RewardConfig().lambda_loop == 0.1 and RewardConfig.preset("paper").lambda_loop == 0.5


# ------------------------------------------------------------------------ simple preset


@pytest.mark.parametrize("resolved, charge_every, expected_collab", [(True, False, 0), (False, False, 2),
                                                                     (True, True, 2)])
def test_simple_collaboration_penalty(resolved, charge_every, expected_collab):
    cfg = RewardConfig.preset("simple", lambda_collab=0.5, charge_every_call=charge_every)
    t = reward_terms(EpisodeFacts(["ls", "ask_expert", "cat a", "ask_expert"], resolved), cfg)
    assert t["n_calls"] == 2 and t["c_collab"] == expected_collab
    assert t["reward_collab"] == pytest.approx(-0.5 * expected_collab)
    assert t["reward_task"] == (1.0 if resolved else -0.1)


def test_simple_loop_penalty_counts_repeats_in_a_five_step_window():
    actions = ["pytest", "cat a", "pytest", "x1", "x2", "x3", "x4", "x5", "pytest", "pytest"]
    t = reward_terms(EpisodeFacts(actions, False), RewardConfig.preset("simple", lambda_loop=0.2))
    assert t["c_loop"] == 2  # the 3rd action (within 5 of the 1st) and the last; the 9th is 6 after the 3rd
    assert t["reward_loop"] == pytest.approx(-0.4)
    assert t["reward_total"] == pytest.approx(-0.1 - 0.4)


def test_simple_edge_cases_empty_episode_and_zero_lambdas():
    t = reward_terms(EpisodeFacts([], False), SIMPLE)
    assert (t["c_loop"], t["n_calls"], t["reward_loop"], t["reward_collab"], t["reward_total"]) == (0, 0, 0, 0, -0.1)
    zero = RewardConfig.preset("simple", lambda_loop=0.0, lambda_collab=0.0)
    assert reward_terms(EpisodeFacts(["ls"] * 9 + ["ask_expert"] * 3, True), zero)["reward_total"] == 1.0
    assert str(reward_terms(EpisodeFacts(["ls"], True), SIMPLE)["reward_loop"]) == "0.0"  # not -0.0


# ------------------------------------------------------------------------- paper preset

GOLD = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def f(a, b):\n-    return a - b\n+    return a + b\n"


def test_paper_loop_term_gate_and_floor():
    looping = ["python -m pytest tests/test_a.py -x"] * 16 + ["git diff"]
    t = reward_terms(EpisodeFacts(looping, True), PAPER, stage=1)
    assert t["max_run"] == 16 and t["r_loop"] == pytest.approx(-1.0)  # (16 - 15 + 1) * 0.5
    assert t["g_loop"] == 0.5 and t["reward_gated_other"] == pytest.approx(0.5 * 1.0)
    severe = reward_terms(EpisodeFacts(["cat f"] * 60, True), PAPER, stage=1)
    assert severe["r_loop"] == -10.0 and severe["g_loop"] == 0.0 and severe["reward_gated_other"] == 0.0
    clean = reward_terms(EpisodeFacts(["ls", "cat a", "pytest"], True), PAPER, stage=1)
    assert clean["r_loop"] == 0 and clean["g_loop"] == 1.0 and clean["reward_total"] == 1.0


def test_paper_similarity_only_on_failures():
    close = GOLD.replace("a + b", "a + b  # fix")
    far = "--- a/z.py\n+++ b/z.py\n@@ -1 +1 @@\n-import os\n+import sys, json, re\n"
    assert reward_terms(EpisodeFacts([], False, close, GOLD), PAPER, 1)["r_sim"] == 0.0
    t = reward_terms(EpisodeFacts([], False, far, GOLD), PAPER, 1)
    assert t["similarity"] < 0.5 and t["r_sim"] == -1.0 and t["reward_total"] == pytest.approx(-PAPER.w_sim)
    assert reward_terms(EpisodeFacts([], False, "", GOLD), PAPER, 1)["r_sim"] == -1.0  # empty patch
    assert reward_terms(EpisodeFacts([], True, far, GOLD), PAPER, 1)["r_sim"] == 0.0  # resolved: no penalty


def test_paper_curriculum_stages():
    facts = EpisodeFacts(["ls", "ask_expert", "cat a"], True, judge=[JudgeScore(1.0, 0.0)])
    s1 = reward_terms(facts, PAPER, stage=1)
    assert (s1["stage"], s1["reward_follow"], s1["g_follow"], s1["reward_no_call"]) == (1, 0.0, 1.0, 0.0)
    assert s1["reward_total"] == pytest.approx(1.0)  # stage I: w_expert = 0, no follow term or gate
    s2 = reward_terms(facts, PAPER, stage=2)
    assert s2["r_follow"] == -2.0 and s2["reward_follow"] == pytest.approx(-4.0)  # psi(0) = -2, w_follow 2
    assert s2["g_follow"] == 0.0 and s2["reward_gated_other"] == 0.0  # advice not followed: R_other cut
    assert s2["reward_total"] == pytest.approx(-4.0)
    no_call = reward_terms(EpisodeFacts(["ls", "cat a"], True), PAPER, stage=2)
    assert no_call["reward_no_call"] == -10.0 and no_call["reward_total"] == pytest.approx(1.0 - 10.0)
    off = RewardConfig.preset("paper", curriculum=False)
    assert paper_terms.curriculum_stage(1, 160, off) == 2 and paper_terms.curriculum_stage(1, 160, PAPER) == 1


def test_paper_expert_terms_phi_and_back_to_back():
    facts = EpisodeFacts(["ls", "ask_expert", "ask_expert", "cat a"], True,
                         judge=[JudgeScore(0.9, 1.0), JudgeScore(0.1, 1.0)])
    t = reward_terms(facts, PAPER, stage=2)
    assert t["n_b2b"] == 1 and t["r_b2b"] == -0.5
    assert t["r_expert"] == pytest.approx((0.9 + PAPER.p_low) / 2 - 0.5)
    assert t["r_other"] == pytest.approx(1.0 + 0.3 * t["r_expert"])
    assert paper_terms.back_to_back_reward(10) == -1.0  # floor


@pytest.mark.parametrize("preset", ["simple", "paper"])
def test_components_sum_to_total_and_trl_functions_read_them(preset):
    cfg = RewardConfig.preset(preset)
    facts = [EpisodeFacts(["ls"] * 20 + ["ask_expert"], False, "", GOLD, [JudgeScore(0.2, 0.9)]),
             EpisodeFacts(["ls", "ask_expert", "cat a"], True, GOLD, GOLD, [JudgeScore(1.0, 1.0)]),
             EpisodeFacts([], False)]
    terms = [reward_terms(f, cfg, stage=2) for f in facts]
    for t in terms:
        assert t["reward_total"] == pytest.approx(sum(t[f"reward_{c}"] for c in reward_config.components(preset)))
    columns = {k: [t[k] for t in terms] for k in terms[0]}
    funcs = R.trl_reward_functions(cfg)
    assert [f.__name__ for f in funcs] == list(reward_config.components(preset))
    totals = [sum(vals) for vals in zip(*(f(completions=["", "", ""], **columns) for f in funcs))]
    assert totals == pytest.approx(columns["reward_total"])
    assert R.total_reward(["", "", ""], **columns) == pytest.approx(columns["reward_total"])
    with pytest.raises(KeyError, match="reward_"):
        funcs[0](completions=[""])


# ------------------------------------------------------------ a real, scripted trajectory


@pytest.fixture(scope="module")
def scripted(tiny_repo):
    """One resolved scripted-oracle episode with one expert call, graded for real."""
    from protege.env.base import EnvConfig, RepoSource
    from protege.models.scripted import ScriptedPolicy

    repo, task = tiny_repo
    env_config = EnvConfig(repos=RepoSource(mirror_template=str(repo)))
    traj = run_episodes([task], ScriptedPolicy([task]), ReferenceExpert(), partial(make_environment, config=env_config),
                        AgentConfig.preset("smoke"))[0]
    return task, traj, grade(task, traj.patch, env_config).resolved


def test_scripted_trajectory_terms_both_presets(scripted):
    task, traj, resolved = scripted
    assert resolved and traj.exit_status == "submitted" and len(traj.expert_calls) == 1
    judge = judges.HeuristicJudge()
    facts = R.episode_facts(traj, resolved, task.patch, judge, task.problem_statement)
    assert facts.actions == traj.actions and len(facts.judge) == 1
    # The oracle asks right after the failing test run and then edits the file the expert names.
    assert (facts.judge[0].warranted, facts.judge[0].followed) == (1.0, 1.0)
    simple = reward_terms(facts, SIMPLE)
    assert (simple["reward_task"], simple["c_loop"], simple["c_collab"], simple["reward_total"]) == (1.0, 0, 0, 1.0)
    paper = reward_terms(facts, PAPER, stage=2)
    assert paper["r_loop"] == 0 and paper["r_follow"] == 1.0 and paper["r_expert"] == 1.0
    assert paper["reward_total"] == pytest.approx(0 + 2.0 * 1.0 + 1.0 * 1.0 * (1.0 + 0.3 * 1.0))


def test_call_views_see_the_call_in_context(scripted):
    _, traj, _ = scripted
    (view,) = judges.call_views(traj)
    call = traj.expert_calls[0]
    assert view.question == call.question and view.reply == call.reply
    assert view.actions_before == traj.actions[: len(view.actions_before)]
    assert "FAILED" in view.last_observation or "failed" in view.last_observation
    assert view.after and view.after[0]["name"] == "str_replace_editor"


# ------------------------------------------------------------------------------- judges


class JudgeServer:
    """A minimal OpenAI-compatible chat endpoint that answers with a fixed text."""

    def __init__(self, text):
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "judge",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


VIEW = CallView("Where is the bug?", "Look at `parse` in `src/m.py`.", ["ls", "cat a", "cat b", "cat c"],
                "FAILED tests/test_m.py::test_parse", [{"name": "str_replace_editor",
                                                        "arguments": {"command": "view", "path": "src/m.py"}}])


def test_openai_judge_parses_scores_and_sees_the_call():
    server = JudgeServer('{"warranted": 0.25, "followed": 0.75}')
    try:
        judge = judges.OpenAIJudge(model="judge", base_url=server.url, max_retries=0, timeout_s=10)
        (score,) = judge.score([VIEW], "parse fails on padded input")
    finally:
        server.close()
    assert (score.warranted, score.followed, score.source) == (0.25, 0.75, "openai")
    prompt = server.requests[0]["messages"][-1]["content"]
    assert "Where is the bug?" in prompt and "str_replace_editor view src/m.py" in prompt and "FAILED" in prompt
    assert server.requests[0]["messages"][0]["content"] == judges.JUDGE_SYSTEM_PROMPT


@pytest.mark.parametrize("answer", ["I think it was fine.", None])
def test_openai_judge_fails_soft_to_the_heuristic(answer):
    server = JudgeServer(answer) if answer else None
    url = server.url if server else "http://127.0.0.1:9/v1"  # nothing listens on port 9
    try:
        (score,) = judges.OpenAIJudge(model="judge", base_url=url, max_retries=0, timeout_s=5).score([VIEW])
    finally:
        if server:
            server.close()
    heuristic = judges.HeuristicJudge().score([VIEW])[0]
    assert score.source == "heuristic-fallback"
    assert (score.warranted, score.followed) == (heuristic.warranted, heuristic.followed) == (1.0, 1.0)


def test_judge_protocol_and_factory():
    assert isinstance(judges.HeuristicJudge(), judges.Judge)
    assert isinstance(make_judge("openai:judge", "http://127.0.0.1:9/v1"), judges.OpenAIJudge)
    with pytest.raises(ValueError, match="unknown judge"):
        make_judge("oracle")


def test_giving_up_on_format_errors_can_cost_more_than_a_loop():
    """The pilot's penalised protégé traded loops for format-error exits (cheaper under the loop
    penalty alone); r_gave_up prices that exit. episode_facts carries the exit status through."""
    from types import SimpleNamespace

    from protege.stages.rewards import episode_facts

    gave_up = SimpleNamespace(actions=[], patch="", action_keys=["fmt", "fmt", "fmt"], exit_status="format_errors")
    looped = SimpleNamespace(actions=["ls"] * 5, patch="", action_keys=["ls"] * 5, exit_status="repeat_limit")
    plain = RewardConfig.preset("simple", lambda_loop=0.1)
    priced = RewardConfig.preset("simple", lambda_loop=0.1, r_gave_up=-1.0)
    total = {(name, cfg_name): reward_terms(episode_facts(t, False), cfg)["reward_total"]
             for name, t in (("gave_up", gave_up), ("looped", looped)) for cfg_name, cfg in (("plain", plain), ("priced", priced))}
    assert total["gave_up", "plain"] > total["looped", "plain"]  # quitting is the cheaper failure by default
    assert total["gave_up", "priced"] < total["looped", "priced"]
    assert total["looped", "priced"] == total["looped", "plain"]  # only the format-error exit is repriced
