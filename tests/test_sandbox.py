"""The sandbox contains what a model might run. Each test runs the real command."""

import os
import subprocess
import time

import pytest

from protege.env.sandbox import SandboxConfig, bwrap_path, hand_over, run_command


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "home").mkdir()
    hand_over(tmp_path, SandboxConfig())
    return tmp_path


def run(ws, cmd, **cfg):
    return run_command(cmd, ws / "repo", ws / "home", SandboxConfig(**cfg), writable=[ws])


def test_plain_command(ws):
    res = run(ws, "echo hello; pwd")
    assert res.ok and res.output.splitlines() == ["hello", str(ws / "repo")]


def test_exit_code_is_reported(ws):
    res = run(ws, "exit 3")
    assert res.exit_code == 3 and "[exit code 3]" in res.observation()


def test_sleep_times_out_and_is_killed(ws):
    start = time.monotonic()
    res = run(ws, "sleep 1000", timeout_s=2)
    assert res.timed_out and time.monotonic() - start < 10
    assert "timed out" in res.observation()


def test_endless_output_is_cut_and_killed(ws):
    res = run(ws, "yes", timeout_s=30, output_kill_bytes=2_000_000, output_limit_chars=1000)
    assert res.output_killed and res.total_bytes > 2_000_000
    assert len(res.output) < 1200 and "characters cut" in res.output
    obs = res.observation()
    assert "killed" in obs and "truncated" in obs


def test_long_output_keeps_head_and_tail(ws):
    res = run(ws, "seq 1 100000", output_limit_chars=2000)
    assert res.output.startswith("1\n2\n") and res.output.rstrip().endswith("100000")
    assert res.truncated_chars > 500_000


def test_secrets_are_not_visible(ws, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    res = run(ws, "env; echo KEY=$OPENAI_API_KEY; echo HOME=$HOME")
    assert "sk-very-secret" not in res.output and "sk-ant-secret" not in res.output
    assert "KEY=\n" in res.output + "\n" and f"HOME={ws / 'home'}" in res.output


def test_fork_bomb_is_contained(ws):
    # a fork bomb whose every level also starts a marked sleeper, so leftovers can be found
    bomb = "b(){ (exec -a protegebomb sleep 300) & b | b & }; b"
    start = time.monotonic()
    res = run(ws, bomb, timeout_s=10, max_processes=64)
    assert time.monotonic() - start < 30
    assert "Resource temporarily unavailable" in res.output or res.timed_out or res.background_killed
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", "protegebomb"], capture_output=True, text=True).stdout
    assert left.strip() == ""


def test_background_process_is_stopped(ws):
    # a marked sleeper: a plain "sleep 300" elsewhere on a shared machine must not fail the test
    res = run(ws, "(exec -a protegebg sleep 300) & echo started")
    assert "started" in res.output and res.background_killed >= 1
    assert "background" in res.observation()
    time.sleep(0.3)
    out = subprocess.run(["pgrep", "-f", "protegebg"], capture_output=True, text=True).stdout
    assert out.strip() == ""


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")
def test_writes_outside_workspace_fail(ws):
    res = run(ws, "echo x > /etc/protege_escape; echo y > /tmp/escape; echo z > inside.txt; echo w > $HOME/h")
    assert not os.path.exists("/etc/protege_escape") and not os.path.exists("/tmp/escape")
    assert (ws / "repo" / "inside.txt").read_text() == "z\n" and (ws / "home" / "h").exists()
    assert "Read-only file system" in res.output or "Permission denied" in res.output


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")
def test_network_is_off(ws):
    res = run(ws, "python -c \"import socket; socket.create_connection(('1.1.1.1', 80), timeout=3)\"")
    assert res.exit_code != 0 and ("Network is unreachable" in res.output or "OSError" in res.output)


def test_memory_limit(ws):
    res = run(ws, "python -c \"x = bytearray(3 * 2**30)\"", memory_mb=512)
    assert res.exit_code != 0 and "MemoryError" in res.output


def test_file_size_limit(ws):
    res = run(ws, "head -c 50000000 /dev/zero > big.bin; ls -l big.bin", max_file_mb=10)
    assert (ws / "repo" / "big.bin").stat().st_size <= 10 * 2**20
    assert "File too large" in res.output


def test_unstartable_command_is_an_observation(ws, tmp_path):
    res = run_command("echo hi", tmp_path / "does-not-exist", ws / "home", SandboxConfig(isolation="none"))
    assert res.error and "sandbox error" in res.observation()
