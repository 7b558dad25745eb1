"""The unit suite really runs offline: opening a socket fails."""

import socket

import pytest
from pytest_socket import SocketBlockedError


def test_sockets_are_disabled() -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
