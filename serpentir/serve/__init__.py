"""`serpentir serve`: a web page and an HTTP API to restore photos with the bundled models.

Needs the optional web extra (`pip install "serpentir[web]"`: Starlette and uvicorn). Nothing else in
serpentir imports this package, so the library stays lean without it.

    app.py        routes: the page, /api/restore, /api/jobs, /api/models, /api/samples
    jobs.py       the bounded queue and its worker threads
    limits.py     upload size, pixel count, queue length; the 4xx a bad upload gets
    models.py     bundled models, loaded once per task on first use
    restoring.py  upload -> restored PNG bytes, the same code path as `serpentir restore`
    samples.py    degraded sample photos for trying the page
    server.py     binding the socket and running uvicorn
    static/       the page: plain HTML, CSS and JavaScript, nothing fetched from elsewhere
"""

from __future__ import annotations

from .limits import Limits

__all__ = ["Limits", "serve"]


def serve(host: str = "127.0.0.1", port: int = 7860, *, limits: Limits | None = None, device: str = "auto",
          tile: int | None = None) -> None:
    """Run the server until interrupted (Ctrl+C); a one-line UserError when the web extra is missing."""
    from .server import run_server

    run_server(host, port, limits=limits or Limits(), device=device, tile=tile)
