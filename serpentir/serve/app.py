"""The HTTP side: the page, the JSON API, uploads streamed into a temporary folder, jobs queued.

Routes:
    GET  /                          the page (static/index.html; no CDN, works offline)
    GET  /api/models                the bundled models, the default first
    GET  /api/status                how busy the server is
    GET  /api/samples               names of the sample photos
    GET  /api/samples/NAME.png      a sample photo degraded by ?task=T, to try the page without a photo
    POST /api/restore?task=T        image bytes in, restored PNG out (for scripts; waits in the queue)
    POST /api/jobs?task=T           image bytes in, {"id": ...} out at once (the page; then poll)
    GET  /api/jobs/ID               state, place in the queue, elapsed and expected seconds
    GET  /api/jobs/ID/result        the restored PNG
Every refusal is a 4xx (or 503 with Retry-After when the queue is full) with {"error": "one line"}.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import tempfile
import time
from pathlib import Path

import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import UserError
from .jobs import Job, JobQueue, QueueFull
from .limits import Limits, UploadRejected
from .models import ModelCache
from .restoring import check_upload, restore_upload
from .samples import Samples

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("serpentir.serve")


class RestoreService:
    """The server's state (models, queue, temporary folder) and its request handlers."""

    def __init__(self, limits: Limits, models: ModelCache, *, tile: int | None = None) -> None:
        self.limits, self.models, self.tile = limits, models, tile
        self.samples = Samples()
        self.queue: JobQueue | None = None
        self.upload_dir: Path | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette):
        """Uploads live in a fresh temporary folder for the server's lifetime, removed at shutdown."""
        self._tmp = tempfile.TemporaryDirectory(prefix="serpentir-serve-")
        self.upload_dir = Path(self._tmp.name)
        self.queue = JobQueue(workers=self.limits.workers, capacity=self.limits.queue_size,
                              keep=self.limits.keep_results, ttl_s=self.limits.result_ttl_s)
        try:
            yield
        finally:
            await run_in_threadpool(self.queue.close)
            self._tmp.cleanup()

    # --- routes -------------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    async def list_models(self, request: Request) -> Response:
        models = await run_in_threadpool(self.models.describe)
        return JSONResponse({"default": self.models.default_task, "models": models})

    async def status(self, request: Request) -> Response:
        return JSONResponse({**self.queue.status(), "max_upload_bytes": self.limits.max_upload_bytes,
                             "max_pixels": self.limits.max_pixels})

    async def list_samples(self, request: Request) -> Response:
        return JSONResponse({"samples": self.samples.names()})

    async def sample(self, request: Request) -> Response:
        try:
            task = self.models.resolve(request.query_params.get("task"))
            loaded = await run_in_threadpool(self.models.get, task)
            png = await run_in_threadpool(self.samples.png, request.path_params["photo"], loaded.degradation)
        except UploadRejected as e:
            return _error(e.status, str(e))
        return Response(png, media_type="image/png")

    async def restore(self, request: Request) -> Response:
        """Synchronous API: answer with the restored PNG once the job has run."""
        job = await self._accept(request)
        if isinstance(job, Response):
            return job
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        job.on_done(lambda: loop.call_soon_threadsafe(_set_once, done))
        await done
        self.queue.forget(job)
        return self._result(job)

    async def submit(self, request: Request) -> Response:
        """Asynchronous API (the page): queue the job, answer its id; progress via GET /api/jobs/ID."""
        job = await self._accept(request)
        if isinstance(job, Response):
            return job
        return JSONResponse(self._describe(job), status_code=202)

    async def job_status(self, request: Request) -> Response:
        job = self.queue.get(request.path_params["job_id"])
        if job is None:
            return _error(404, "no such job (finished jobs are kept for a while, then forgotten)")
        return JSONResponse(self._describe(job))

    async def job_result(self, request: Request) -> Response:
        job = self.queue.get(request.path_params["job_id"])
        if job is None:
            return _error(404, "no such job (finished jobs are kept for a while, then forgotten)")
        if job.state in ("queued", "running"):
            return _error(409, f"job is still {job.state}")
        return self._result(job)

    # --- helpers ------------------------------------------------------------------------------------

    async def _accept(self, request: Request) -> Job | Response:
        """Read, check and queue one upload, or the 4xx / 503 refusing it.

        The upload's file is deleted when its job ends or when it is refused.
        """
        name = _display_name(request.query_params.get("name"))
        try:
            task = self.models.resolve(request.query_params.get("task"))
            path = await self._receive(request, name)
            try:
                width, height = await run_in_threadpool(check_upload, path, name, self.limits)
                job = Job(work=lambda: self._run(path, name, task), pixels=width * height, label=name, task=task,
                          size=(width, height))
                return self.queue.submit(job)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        except UploadRejected as e:
            return _error(e.status, str(e))
        except QueueFull as e:
            return _busy(e)

    async def _receive(self, request: Request, name: str) -> Path:
        """Stream the body into the upload folder, stopping as soon as it passes the size limit."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            self.limits.check_size(int(declared), name)
        path = self.upload_dir / f"upload-{secrets.token_hex(8)}"
        size = 0
        try:
            with open(path, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.limits.max_upload_bytes:
                        break
                    f.write(chunk)
            self.limits.check_size(size, name)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def _run(self, path: Path, name: str, task: str) -> bytes:
        try:
            return restore_upload(path, name, self.models.get(task), tile=self.tile)
        except UserError:
            raise
        except Exception:
            log.exception("restoring %s (task %s) failed", name, task)
            raise
        finally:
            path.unlink(missing_ok=True)

    def _describe(self, job: Job) -> dict:
        now = time.monotonic()
        elapsed = None if job.started is None else (job.finished or now) - job.started
        failed = job.error is not None
        return {
            "id": job.id, "state": job.state, "task": job.task, "name": job.label,
            "width": job.size[0], "height": job.size[1],
            "position": self.queue.position(job), "elapsed_s": elapsed, "estimate_s": self.queue.estimate_s(job),
            "error": _message(job.error) if failed else None, "status": _status_of(job.error) if failed else None,
            "result": f"/api/jobs/{job.id}/result" if job.state == "done" else None,
        }

    def _result(self, job: Job) -> Response:
        if job.error is not None:
            if isinstance(job.error, QueueFull):
                return _busy(job.error)
            return _error(_status_of(job.error), _message(job.error))
        stem = Path(job.label).stem or "image"
        return Response(job.result, media_type="image/png",
                        headers={"Content-Disposition": f'attachment; filename="{stem}-restored.png"',
                                 "Cache-Control": "no-store"})


def create_app(limits: Limits | None = None, *, device: str | torch.device = "cpu", tile: int | None = None,
               models: ModelCache | None = None) -> Starlette:
    """The ASGI app; `models` defaults to the bundled checkpoints on `device`."""
    service = RestoreService(limits or Limits(), models or ModelCache(torch.device(device)), tile=tile)
    routes = [
        Route("/", service.page),
        Route("/api/models", service.list_models),
        Route("/api/status", service.status),
        Route("/api/samples", service.list_samples),
        Route("/api/samples/{photo}.png", service.sample),
        Route("/api/restore", service.restore, methods=["POST"]),
        Route("/api/jobs", service.submit, methods=["POST"]),
        Route("/api/jobs/{job_id}", service.job_status),
        Route("/api/jobs/{job_id}/result", service.job_result),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=service.lifespan)
    app.state.service = service
    return app


def _set_once(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _busy(e: QueueFull) -> JSONResponse:
    return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": str(e.retry_after_s)})


def _status_of(error: Exception) -> int:
    if isinstance(error, UploadRejected):
        return error.status
    if isinstance(error, QueueFull):
        return 503
    if isinstance(error, UserError):
        return 422
    return 500


def _message(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, (UserError, QueueFull)) else f"internal error: {type(error).__name__}: {text}"


def _display_name(raw: str | None) -> str:
    """The uploaded file's name, for messages and the download name: base name, safe characters only."""
    name = re.sub(r"[^\w.\- ]", "_", (raw or "upload").replace("\\", "/").rsplit("/", 1)[-1]).strip()[:100]
    return name or "upload"
