"""Bind the socket ourselves, then hand it to uvicorn.

Binding first turns "port in use" into a one-line error and makes --port 0 (any free port) usable:
the address printed is the one really bound.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

from ..errors import UserError
from .limits import Limits


def run_server(host: str, port: int, *, limits: Limits, device: str = "auto", tile: int | None = None) -> None:
    try:
        import uvicorn

        from .app import create_app
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("starlette", "uvicorn", "anyio"):
            raise UserError('serpentir serve needs the web extra: pip install "serpentir[web]"') from None
        raise
    from ..device import resolve_device

    app = create_app(limits, device=resolve_device(device), tile=tile)
    sock = _bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}/"
    if not _is_loopback(host):
        print(f"serpentir serve: listening on {host}, reachable from other machines; anyone who can reach it "
              "can upload images", file=sys.stderr)
    print(f"serpentir serve: {url} (Ctrl+C to stop)", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after its orderly shutdown: the normal way to stop
        pass
    print("serpentir serve: stopped; uploads removed", flush=True)


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UserError(f"--host {host}: cannot resolve it ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port or --host") from None
    sock.listen(128)
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
