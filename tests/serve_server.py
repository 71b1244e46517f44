"""A real `serpentir serve` process on a free loopback port, for the API and browser tests.

The server and the reference `serpentir restore` run with one CPU thread and the test suite's scan
backend, so their outputs can be compared byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import torch

from serpentir import cli

SMALLEST_TASK = "denoise"  # a 1.5 MB bundled model, the smallest with gaussian_deblur's 3.1 MB


def server_env(tmp_dir: Path) -> dict[str, str]:
    """One thread, and TMPDIR pointing at a folder the test watches: uploads may go nowhere else."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_dir)}


@contextlib.contextmanager
def running_server(tmp_dir: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of a server started with `options`; stopped with Ctrl+C (SIGINT) afterwards."""
    process = subprocess.Popen([sys.executable, "-m", "serpentir", "serve", "--port", "0", "--device", "cpu", *options],
                               env=server_env(tmp_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("serpentir serve: http://127.0.0.1:"), (line, process.stderr.read())
        url = line.split()[2].rstrip("/")
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/status", timeout=5):
                    break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stop(process: subprocess.Popen) -> tuple[int, str]:
    """Ctrl+C the server and wait: (exit code, stderr)."""
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def cli_restore(source: Path, task: str) -> bytes:
    """What `serpentir restore SOURCE -o OUT.png --task TASK` writes, run in this process on one thread
    (the server's OMP_NUM_THREADS=1), so that the arithmetic is the same."""
    out = source.with_name(source.stem + f"-cli-{task}.png")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = cli.main(["restore", str(source), "-o", str(out), "--task", task, "--device", "cpu", "--overwrite"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return out.read_bytes()


def post(url: str, body: bytes | None, headers: dict | None = None, timeout: float = 120):
    """(status, headers (case-insensitive), body) of a POST, 4xx and 5xx included."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())
