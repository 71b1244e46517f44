"""The server's bounded queue on its own (no HTTP): never more than `workers` restorations at once, at most
`capacity` waiting, refusals with a retry time, failures reported without killing a worker; and the
`serve` command's wiring (defaults, a missing web extra, the library never importing the server)."""

import subprocess
import sys
import threading
import time

import pytest

from serpentir import cli
from serpentir.serve import Limits
from serpentir.serve.jobs import Job, JobQueue, QueueFull


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Gate:
    """Work that blocks until released, counting how many run at the same time."""

    def __init__(self):
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def work(self, result=b"ok"):
        def run():
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            self.release.wait(10)
            with self.lock:
                self.now -= 1
            return result
        return run


def test_capacity_positions_and_refusal():
    gate = Gate()
    queue = JobQueue(workers=1, capacity=2)
    try:
        first = queue.submit(Job(gate.work(b"1"), pixels=100))
        wait_for(lambda: first.state == "running")
        second, third = queue.submit(Job(gate.work(b"2"))), queue.submit(Job(gate.work(b"3")))
        assert [queue.position(j) for j in (first, second, third)] == [0, 1, 2]
        with pytest.raises(QueueFull) as refused:
            queue.submit(Job(gate.work()))
        assert refused.value.retry_after_s >= 1
        assert queue.status() == {"workers": 1, "running": 1, "waiting": 2, "capacity": 2, "kept": 3}
        gate.release.set()
        for job in (first, second, third):
            assert job.wait(10)
        assert [j.result for j in (first, second, third)] == [b"1", b"2", b"3"]
        assert gate.peak == 1
        assert queue.estimate_s(Job(lambda: b"", pixels=1000)) > 0  # learnt from the first job's speed
    finally:
        queue.close()


def test_never_more_than_workers_at_once():
    gate = Gate()
    queue = JobQueue(workers=2, capacity=10)
    try:
        jobs = [queue.submit(Job(gate.work())) for _ in range(8)]
        wait_for(lambda: gate.now == 2)
        time.sleep(0.05)
        assert gate.now == 2 and sum(j.state == "queued" for j in jobs) == 6
        gate.release.set()
        assert all(j.wait(10) for j in jobs) and gate.peak == 2
    finally:
        queue.close()


def test_a_failing_job_is_reported_and_the_worker_lives_on():
    queue = JobQueue(workers=1, capacity=4)
    try:
        def boom():
            raise ValueError("decoder exploded")

        bad, good = queue.submit(Job(boom)), queue.submit(Job(lambda: b"fine"))
        assert bad.wait(10) and good.wait(10)
        assert bad.state == "failed" and isinstance(bad.error, ValueError)
        assert good.state == "done" and good.result == b"fine"
        called = []
        bad.on_done(lambda: called.append(True))  # already finished: called at once
        assert called == [True]
    finally:
        queue.close()


def test_finished_jobs_are_forgotten_beyond_keep():
    queue = JobQueue(workers=1, capacity=10, keep=2)
    try:
        jobs = []
        for _ in range(4):
            jobs.append(queue.submit(Job(lambda: b"x")))
            assert jobs[-1].wait(10)
        queue.submit(Job(lambda: b"y")).wait(10)  # a submit prunes the finished ones
        assert [queue.get(j.id) is not None for j in jobs] == [False, False, True, True]
        queue.forget(jobs[3])
        assert queue.get(jobs[3].id) is None
    finally:
        queue.close()


def test_close_fails_waiting_jobs_and_refuses_new_ones():
    gate = Gate()
    queue = JobQueue(workers=1, capacity=4)
    running = queue.submit(Job(gate.work()))
    wait_for(lambda: running.state == "running")
    waiting = queue.submit(Job(gate.work()))
    gate.release.set()
    queue.close()
    assert waiting.state == "failed" and isinstance(waiting.error, QueueFull)
    with pytest.raises(QueueFull):
        queue.submit(Job(gate.work()))


def test_limits_refuse_nonsense():
    with pytest.raises(Exception, match="queue-size must be at least 1"):
        Limits(queue_size=0)


def test_command_line_defaults_are_the_library_defaults():
    args = cli.build_parser().parse_args(["serve"])
    limits = Limits()
    assert (args.host, args.port) == ("127.0.0.1", 7860)  # loopback unless asked otherwise
    assert int(args.max_upload_mb * 1024 * 1024) == limits.max_upload_bytes
    assert (args.max_pixels, args.queue_size, args.workers) == (limits.max_pixels, limits.queue_size, limits.workers)


def test_missing_web_extra_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the extra were not installed
    code = cli.main(["serve", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err == 'serpentir: error: serpentir serve needs the web extra: pip install "serpentir[web]"\n'


def test_the_library_and_the_cli_parser_do_not_import_the_server():
    code = ("import sys, serpentir, serpentir.train, serpentir.infer, serpentir.cli; serpentir.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn') "
            "or m.startswith('serpentir.serve')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "lots"])
def test_bad_upload_limit_is_a_one_line_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--max-upload-mb", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "expected a positive number" in err
