"""The local API over real HTTP: a server started in this process on a free 127.0.0.1 port
with the embedded moto, stopped after the module that uses it."""

from __future__ import annotations

import pytest
from local_http import SIGNING_KEY, Client

from local_api.server import LocalApi


@pytest.fixture(scope="module")
def local_api():
    """The whole API on a free port (port 0: the kernel picks it), embedded moto, a known
    signing key; stopped, and the environment put back, after the module."""
    with LocalApi(port=0, signing_key=SIGNING_KEY) as api:
        yield api


@pytest.fixture
def client(local_api) -> Client:
    return Client(local_api.url)
