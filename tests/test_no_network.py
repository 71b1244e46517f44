"""The suite's network guard (tests/conftest.py) refuses what leaves the machine and lets loopback through."""

import socket
import subprocess
import sys

import pytest
from conftest import NetworkBlocked


def test_a_connection_to_another_machine_is_refused():
    with pytest.raises(NetworkBlocked, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.5)  # TEST-NET-1: never routed
    with pytest.raises(NetworkBlocked, match="192.0.2.1:80"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.connect(("192.0.2.1", 80))
    with pytest.raises(NetworkBlocked, match="2001:db8::1"):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.connect(("2001:db8::1", 443))


def test_a_name_lookup_is_refused():
    with pytest.raises(NetworkBlocked, match="pypi.org"):
        socket.getaddrinfo("pypi.org", 443)


def test_fetching_packages_is_refused():
    with pytest.raises(NetworkBlocked, match="pip download"):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "pyiqa"], check=False)


def test_loopback_still_works():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("localhost", port), timeout=5) as client:
            connection, _ = server.accept()
            with connection:
                client.sendall(b"ping")
                assert connection.recv(4) == b"ping"
