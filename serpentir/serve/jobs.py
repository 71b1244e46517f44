"""A bounded queue of restorations run by a fixed number of worker threads.

A small machine must not start eight restorations because eight people clicked at once: they would
share the same cores, each take eight times as long, and together hold eight times the memory. So a
fixed number of workers run (one by default), at most `capacity` jobs wait, and a job beyond that is
refused at once (the server answers 503 with Retry-After) instead of piling up.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable


class QueueFull(Exception):
    """No place left in the queue; retry_after_s is a guess at when one frees up."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the server is busy; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class Job:
    """One restoration: `work` is called on a worker thread and returns the result bytes."""

    work: Callable[[], bytes]
    pixels: int = 0
    label: str = ""  # the uploaded file's name
    task: str = ""
    size: tuple[int, int] = (0, 0)  # width, height
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    state: str = "queued"  # queued -> running -> done | failed
    started: float | None = None
    finished: float | None = None
    result: bytes | None = None
    error: Exception | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _callbacks: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the worker thread) when the job ends, or now if it has ended."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _finish(self) -> None:
        self.finished = time.monotonic()
        with self._lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class JobQueue:
    """Run jobs on `workers` threads with at most `capacity` waiting; keep finished ones for fetching."""

    def __init__(self, *, workers: int = 1, capacity: int = 4, keep: int = 16, ttl_s: float = 900.0) -> None:
        self.workers, self.capacity, self.keep, self.ttl_s = workers, capacity, keep, ttl_s
        self._waiting: deque[Job] = deque()
        self._running: dict[str, Job] = {}
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # every job not yet forgotten, oldest first
        self._cond = threading.Condition()
        self._closed = False
        self._seconds_per_pixel: float | None = None  # from finished jobs, for estimates
        self._threads = [threading.Thread(target=self._work, name=f"serpentir-worker-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> Job:
        """Queue a job, or raise QueueFull when `capacity` jobs are already waiting."""
        with self._cond:
            if self._closed:
                raise QueueFull(60)
            if len(self._waiting) >= self.capacity:
                raise QueueFull(self._retry_after())
            self._waiting.append(job)
            self._jobs[job.id] = job
            self._forget_old()
            self._cond.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def forget(self, job: Job) -> None:
        """Drop a finished job's result now (an API caller that got its answer needs nothing kept)."""
        with self._cond:
            if job.state in ("done", "failed"):
                self._jobs.pop(job.id, None)

    def position(self, job: Job) -> int:
        """How many jobs run or wait ahead of this one (0 once it runs)."""
        with self._cond:
            if job.state != "queued":
                return 0
            ahead = 0
            for other in self._waiting:
                if other is job:
                    break
                ahead += 1
            return ahead + len(self._running)

    def estimate_s(self, job: Job) -> float | None:
        """Expected restoration time from the speed of earlier jobs; None before the first has finished."""
        rate = self._seconds_per_pixel
        return None if rate is None or not job.pixels else rate * job.pixels

    def status(self) -> dict:
        with self._cond:
            return {"workers": self.workers, "running": len(self._running), "waiting": len(self._waiting),
                    "capacity": self.capacity, "kept": len(self._jobs)}

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new jobs, fail the waiting ones, and let the running ones finish (up to `timeout`)."""
        with self._cond:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
            self._cond.notify_all()
        for job in waiting:
            job.state, job.error = "failed", QueueFull(60)
            job._finish()
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                self._running[job.id] = job
                job.state, job.started = "running", time.monotonic()
            try:
                job.result = job.work()
                job.state = "done"
            except Exception as e:  # reported to the job's caller; the worker lives on
                job.error, job.state = e, "failed"
            with self._cond:
                self._running.pop(job.id, None)
                if job.state == "done" and job.pixels:
                    rate = (time.monotonic() - job.started) / job.pixels
                    old = self._seconds_per_pixel
                    self._seconds_per_pixel = rate if old is None else 0.5 * old + 0.5 * rate
            job._finish()

    def _retry_after(self) -> int:
        """Seconds until a place is likely free (the first running job's remaining time), at least 1 s."""
        rate = self._seconds_per_pixel
        if rate is None or not self._running:
            return 5  # no speed measured yet: a modest guess
        now = time.monotonic()
        remaining = min(rate * j.pixels - (now - j.started) for j in self._running.values())
        return max(1, math.ceil(remaining))

    def _forget_old(self) -> None:
        """Keep at most `keep` finished jobs, none older than `ttl_s` (called with the lock held)."""
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
        for i, job in enumerate(finished):
            if len(finished) - i > self.keep or (job.finished is not None and now - job.finished > self.ttl_s):
                del self._jobs[job.id]
