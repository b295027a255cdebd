"""A protégé served behind an OpenAI-compatible endpoint, started and stopped by the pipeline.

At `full` scale the protégé does not generate in-process: re-prefilling 32k-token contexts at
each of 75 turns with transformers' `generate` is impractical. `ServedModel` launches vLLM's
server (`vllm serve`: paged attention, automatic prefix caching, continuous batching) for a
model folder or hub id, waits until it answers, and stops it on exit; the protégé is then an
`OpenAIPolicy` whose episodes are issued concurrently (`AgentConfig.max_parallel` conversations
per turn, `concurrency` requests in flight), so prefix caching reuses each conversation's earlier
turns across calls. On a machine without a GPU the same class launches `transformers serve`,
which the tests use as a stand-in for vLLM.

The folder given as `log_dir` keeps what a reviewer needs to rerun or debug the server:
``server_launch.json`` (the exact command line, backend, port, start time, readiness time)
and ``server.log`` (its stdout and stderr).

    with ServedModel("runs/x/03_sft/merged", backend="vllm", log_dir="runs/x/05_eval/sft") as served:
        policy = served.policy(temperature=0.0, max_tokens=1024, concurrency=32)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege.models.remote_policies import OpenAIPolicy

BACKENDS = ("vllm", "transformers")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _executable(name: str) -> str:
    """The console script next to this interpreter (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def launch_command(backend: str, model: str, port: int, host: str = "127.0.0.1", served_name: str = "",
                   max_model_len: int = 0, gpu_memory_utilization: float = 0.9, device: str = "auto",
                   extra_args: list[str] | None = None) -> list[str]:
    """The server's command line.

    vLLM: prefix caching on (the point: each agent turn resends the conversation so far),
    tool calls parsed in the Hermes `<tool_call>` format that Qwen2.5 and SmolLM2 write, the
    model served under `served_name`.

    >>> launch_command("vllm", "runs/x/merged", 8000, served_name="protege")[1:5]
    ['serve', 'runs/x/merged', '--host', '127.0.0.1']
    >>> "--enable-prefix-caching" in launch_command("vllm", "m", 8000)
    True
    >>> launch_command("transformers", "m", 8001, device="cpu")[1:]
    ['serve', 'm', '--host', '127.0.0.1', '--port', '8001', '--device', 'cpu']
    """
    if backend == "vllm":
        cmd = [_executable("vllm"), "serve", model, "--host", host, "--port", str(port),
               "--served-model-name", served_name or model, "--enable-prefix-caching",
               "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
               "--gpu-memory-utilization", str(gpu_memory_utilization)]
        # no --disable-log-requests: vLLM 0.11 removed it (request logging is off by default)
        if max_model_len:
            cmd += ["--max-model-len", str(max_model_len)]
    elif backend == "transformers":
        cmd = [_executable("transformers"), "serve", model, "--host", host, "--port", str(port)]
        if device != "auto":
            cmd += ["--device", device]
    else:
        raise ValueError(f"unknown serving backend {backend!r} (use {' or '.join(BACKENDS)})")
    return cmd + list(extra_args or [])


@dataclass
class ServedModel:
    """A model behind a local OpenAI-compatible server for the duration of a `with` block."""

    model: str  # model folder or hub id
    backend: str = "vllm"  # vllm | transformers (CPU stand-in)
    log_dir: str | Path | None = None  # server_launch.json and server.log go here
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    served_name: str = ""  # the `model` of API requests; "" = vLLM: the model path, transformers: the same
    max_model_len: int = 0  # vLLM --max-model-len; 0 = the model's own
    gpu_memory_utilization: float = 0.9
    device: str = "auto"  # transformers serve --device
    ready_timeout_s: float = 900.0  # vLLM loads and compiles a 7B model in a few minutes
    extra_args: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list, init=False)
    _proc: Any = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def request_model(self) -> str:
        return self.served_name or self.model

    def __enter__(self) -> ServedModel:
        self.port = self.port or free_port(self.host)
        self.command = launch_command(self.backend, self.model, self.port, self.host, self.served_name,
                                      self.max_model_len, self.gpu_memory_utilization, self.device, self.extra_args)
        folder = Path(self.log_dir) if self.log_dir else None
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "server.log", "ab") if folder else subprocess.DEVNULL  # noqa: SIM115 (closed in __exit__)
        launched = time.time()
        self._record({"backend": self.backend, "command": self.command, "base_url": self.base_url,
                      "model": self.model, "served_name": self.request_model, "launched_unix": launched})
        # its own process group: stopping it stops the workers vLLM forks
        self._proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if folder:
            log.close()  # the child holds its own descriptor
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._record({"ready_after_s": round(time.time() - launched, 1)})
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _record(self, fields: dict[str, Any]) -> None:
        if not self.log_dir:
            return
        path = Path(self.log_dir) / "server_launch.json"
        data = json.loads(path.read_text()) if path.exists() and "command" not in fields else {}
        path.write_text(json.dumps({**data, **fields}, indent=2))

    def _log_tail(self, chars: int = 3000) -> str:
        path = Path(self.log_dir) / "server.log" if self.log_dir else None
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else "(no log_dir: output discarded)"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.backend} server for {self.model} exited with {self._proc.returncode} "
                                   f"before it was ready; command: {' '.join(self.command)}\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:
                    if json.load(r).get("data"):
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.backend} server for {self.model} not ready after {self.ready_timeout_s:.0f} s; "
                                   f"command: {' '.join(self.command)}\n{self._log_tail()}")
            time.sleep(1)

    def stop(self, timeout_s: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def policy(self, **kwargs: Any):
        """An OpenAIPolicy on this server (kwargs: temperature, max_tokens, concurrency, ...)."""

        return OpenAIPolicy(self.base_url, self.request_model, name=kwargs.pop("name", f"{self.backend}:{self.model}"),
                            **kwargs)
