"""Fixtures of the notification tests: real SMTP and HTTP receivers on 127.0.0.1, and a private
configuration directory (tests/conftest.py loads this plugin)."""
from __future__ import annotations

import pytest

from tests.helpers.notify_servers import SmtpServer, start_http_receiver, start_smtp_server


@pytest.fixture
def notify_config(tmp_path, monkeypatch):
    """TAPEFS_CONFIG_DIR and TAPEFS_STATE_DIR under tmp_path; returns the config directory."""
    monkeypatch.setenv("TAPEFS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEFS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "config"


@pytest.fixture
def smtp_servers():
    """Factory: smtp_servers(mode, tls_files=None, logins=None) -> a running SmtpServer."""
    servers: list[SmtpServer] = []

    def start(mode, tls_files=None, logins=None) -> SmtpServer:
        server = start_smtp_server(mode, tls_files, logins)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.controller.stop()


@pytest.fixture
def http_receiver():
    receiver = start_http_receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
