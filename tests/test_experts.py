"""Experts: retry policy against a local faulty HTTP server, the gold-patch oracle and the
noisy wrapper. (OpenAIExpert against a real model server is in test_policies.py.)"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from protege.core.protocols import Expert, ExpertRequest
from protege.models.experts import OpenAIExpert
from protege.models.patch_reading import guidance_edits, parse_patch
from protege.models.reference_expert import NoisyExpert, ReferenceExpert

PATCH = """\
diff --git a/src/pkg/core.py b/src/pkg/core.py
--- a/src/pkg/core.py
+++ b/src/pkg/core.py
@@ -10,6 +10,8 @@ class Parser:
     def parse(self, value):
         text = value
-        return int(text)
+        if text is None:
+            return 0
+        return int(text.strip())
 
     def other(self):
         pass
"""

CONTEXT = [
    {"role": "user", "content": "Parser.parse crashes on ' 3 '."},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "bash", "arguments": '{"command": "cat /testbed/src/pkg/util.py"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "def load(path):\n    return open(path).read()"},
]


def request(question="Where should I make the change?", context=CONTEXT, gold=PATCH, iid="pkg-1"):
    return ExpertRequest(question, context, iid, problem_statement="parse fails on padded input", gold_patch=gold)


# ------------------------------------------------------------------------ fault injection

OK_BODY = {
    "id": "x", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Look at parse()."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
}


class FaultyServer:
    """Answers each POST with the next scripted behaviour: an HTTP status, "hang", or "ok"."""

    def __init__(self, script, default="ok"):
        self.script, self.default, self.requests = list(script), default, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((time.monotonic(), body))
                action = outer.script.pop(0) if outer.script else outer.default
                if action == "hang":
                    time.sleep(3)
                    return
                status, payload, headers = 200, OK_BODY, {}
                if action != "ok":
                    status, payload = int(action), {"error": {"message": f"injected {action}"}}
                    if status == 429:
                        headers["Retry-After"] = "0.3"
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def faulty():
    servers = []

    def make(script, default="ok"):
        servers.append(FaultyServer(script, default))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def expert(url, **kw):
    kw = {"timeout_s": 0.5, "max_retries": 4, "backoff_s": 0.05, "prices": {"m": (2.0, 10.0)}, **kw}
    return OpenAIExpert(url, "m", **kw)


def test_expert_retries_500_429_and_timeouts_then_succeeds(faulty):
    server = faulty(["500", "429", "hang"])
    e = expert(server.url)
    assert isinstance(e, Expert) and e.client.max_retries == 0
    reply = e.advise(request())
    assert not reply.failed and reply.text == "Look at parse()."
    assert reply.meta["attempts"] == 4 and len(server.requests) == 4
    assert [err.split(":")[0] for err in reply.meta["errors"]] == ["HTTP 500", "HTTP 429", "APITimeoutError"]
    times = [t for t, _ in server.requests]
    assert times[2] - times[1] >= 0.3  # Retry-After honoured
    assert (reply.input_tokens, reply.output_tokens) == (100, 20)
    assert reply.cost_usd == pytest.approx((100 * 2.0 + 20 * 10.0) / 1e6)


def test_persistent_failure_returns_failed_reply(faulty):
    server = faulty([], default="503")
    reply = expert(server.url, max_retries=2).advise(request())
    assert reply.failed and "503" in reply.error and reply.meta["attempts"] == 3
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(faulty):
    server = faulty([], default="400")
    reply = expert(server.url).advise(request())
    assert reply.failed and len(server.requests) == 1


def test_unreachable_endpoint_never_raises(faulty):
    server = faulty([])
    url = server.url
    server.close()
    reply = expert(url, max_retries=1).advise(request())
    assert reply.failed and "Connection" in reply.error


def test_expert_sees_last_k_messages_and_no_gold_patch(faulty):
    server = faulty([])
    context = [{"role": "user", "content": f"message {i}"} for i in range(8)]
    expert(server.url, context_messages=5).advise(request(context=context))
    [(_, body)] = server.requests
    prompt = body["messages"][1]["content"]
    assert "message 2" not in prompt and all(f"message {i}" in prompt for i in range(3, 8))
    assert "return int(text.strip())" not in prompt and "Where should I make the change?" in prompt


def test_expert_shown_gold_patch_is_labelled_oracle(faulty):
    server = faulty([])
    reply = expert(server.url, show_gold_patch=True).advise(request())
    assert reply.oracle and "do not reveal" in server.requests[0][1]["messages"][1]["content"]


# --------------------------------------------------------------------------- offline experts


def test_parse_patch_finds_file_function_and_line():
    [change] = parse_patch(PATCH)
    assert (change.path, change.function, change.line) == ("src/pkg/core.py", "parse", 12)
    assert change.removed == ["        return int(text)"] and len(change.added) == 3


@pytest.mark.parametrize("level", ReferenceExpert.LEVELS)
def test_reference_expert_levels(level):
    e = ReferenceExpert(level, seed=0)
    assert isinstance(e, Expert) and e.oracle
    reply = e.advise(request())
    assert reply.oracle and reply.meta["oracle"] == "reference-expert(gold patch)" and not reply.failed
    assert "src/pkg/core.py" in reply.text and "parse" in reply.text
    assert "util.py" in reply.text  # answers in context: the agent is looking at the wrong file
    reveals_edit = "return int(text.strip())" in reply.text
    assert reveals_edit == (level == "exact_edit")
    if level == "description":
        assert "return int(text)" in reply.text and "text.strip" in reply.text
    if level == "location":
        assert "line 12" in reply.text and "return int" not in reply.text


def test_reference_expert_phrasing_varies_and_is_seeded():
    texts = {ReferenceExpert("location", seed=s).advise(request()).text for s in range(12)}
    assert len(texts) >= 3
    a, b = (ReferenceExpert("description", seed=7).advise(request()).text for _ in range(2))
    assert a == b


def test_reference_expert_without_gold_patch_fails_softly():
    reply = ReferenceExpert().advise(request(gold=None))
    assert reply.failed and reply.oracle


def test_noisy_expert_rate_is_about_p():
    p = 0.3
    flags = [NoisyExpert(ReferenceExpert(), p=p, seed=s).advise(request()).meta["noisy"] for s in range(400)]
    assert abs(sum(flags) / len(flags) - p) < 0.07


def test_noisy_expert_misleads():
    e = NoisyExpert(ReferenceExpert("exact_edit"), p=1.0, seed=3)
    assert e.oracle
    for _ in range(20):
        reply = e.advise(request())
        assert reply.meta["noisy"] and reply.oracle
        assert "return int(text.strip())" not in reply.text
        assert reply.meta["noise"] in ("wrong_file", "wrong_function", "wrong_edit")
        if reply.meta["noise"] == "wrong_function":
            assert "`load`" in reply.text  # a function the agent has seen, not the gold one
    clean = NoisyExpert(ReferenceExpert(), p=0.0).advise(request())
    assert clean.meta["noisy"] is False and "parse" in clean.text


def test_reference_expert_levels_name_the_line_and_the_wrong_token():
    from protege.tasks.bundled import load_bundled

    task = next(t for t in load_bundled("train") if t.extra["mutation"]["kind"] == "arith_flip")
    change = parse_patch(task.patch)[0]
    request = ExpertRequest("where is the bug?", [], task.instance_id, task.problem_statement, gold_patch=task.patch)
    texts = {lv: ReferenceExpert(lv).advise(request).text for lv in ReferenceExpert.LEVELS}
    removed = change.removed[0].strip()
    assert f"line {change.line}" in texts["location"] and removed not in texts["location"]
    assert removed in texts["description"] and "wrong operator" in texts["description"]
    assert change.added[0].strip() not in texts["description"]  # the description never holds the fix
    edit = guidance_edits(texts["exact_edit"])[0]  # the call to copy, in the protégé's own format
    assert edit["command"] == "str_replace" and change.added[0] in edit["new_str"]
    mixed = ReferenceExpert("exact_edit+description")
    assert mixed.advise(request).meta["hint_level"] == mixed.level_for(task.instance_id)
    with pytest.raises(ValueError, match="hint_level"):
        ReferenceExpert("everything")
