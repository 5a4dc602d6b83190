"""Security properties that hold for the process as a whole: instrumenting opens no connection, the test server
listens on loopback only. (No key, header or message content in what costspan exports: tests/core/test_security.py
and, under load and with content capture, tests/reliability/test_secrets.py.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from costspan.testing import ProviderServer
from support import child_environment

# Blocks the network for the whole child process: every name lookup and connection fails, and is recorded. The
# child instruments as configured, then again with the tokenizer download allowed.
INSTRUMENT_BLOCKED = """
import json, os, sys

attempts = []

def block(event, args):
    if event in ("socket.getaddrinfo", "socket.connect"):
        attempts.append([event, str(args[0] if event == "socket.getaddrinfo" else args[1])])
        raise OSError("the network is blocked by the test")

sys.addaudithook(block)

import costspan
from costspan import _tokens

outcomes = []
for download in ("false", "true"):
    os.environ["COSTSPAN_TOKENIZER_DOWNLOAD"] = download
    costspan.instrument()
    if _tokens._loader is not None:
        _tokens._loader.join(60)
    outcomes.append({"attempts": attempts[:], "exact": _tokens._encoding is not None})
    attempts.clear()
    costspan.uninstrument()
print(json.dumps(outcomes))
"""


def test_instrument_opens_no_socket(tmp_path: Path) -> None:
    """Defect 2 of issue 18: instrument() started downloading tiktoken's encoding when it was not cached. The
    download is there when asked for (COSTSPAN_TOKENIZER_DOWNLOAD=true)."""
    environ = child_environment(TIKTOKEN_CACHE_DIR=str(tmp_path / "tiktoken-cache"), COSTSPAN_LEDGER="off")
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        environ.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", INSTRUMENT_BLOCKED], env=environ, capture_output=True, text=True, timeout=180, check=True
    )
    default, allowed = json.loads(result.stdout.splitlines()[-1])

    assert default == {"attempts": [], "exact": False}
    assert ["socket.getaddrinfo", "openaipublic.blob.core.windows.net"] in allowed["attempts"]
    assert allowed["exact"] is False


@pytest.mark.parametrize("cached", ["absent", "corrupt", "intact but caching off"])
def test_only_an_intact_cached_encoding_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: str) -> None:
    """tiktoken downloads the encoding again over a damaged cache file, and always with caching off (an empty
    TIKTOKEN_CACHE_DIR): neither counts as on this machine."""
    from costspan import _tokens

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    path = _tokens._cache_file()
    assert path is not None and path.parent == tmp_path
    if cached == "corrupt":
        path.write_bytes(b"not an encoding")
    if cached == "intact but caching off":
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
        assert _tokens._cache_file() is None

    assert not _tokens._available_locally()


def test_the_test_server_listens_on_loopback_only(server: ProviderServer) -> None:
    host, port = server._http.server_address[:2]
    assert host == "127.0.0.1"
    assert server.openai_base_url.startswith(f"http://127.0.0.1:{port}")
    with pytest.raises(OSError), socket.create_connection((_outward_address(), port), timeout=2):
        pass


def _outward_address() -> str:
    """This machine's address on its first non-loopback interface (no packet leaves: UDP connect only routes)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
        return str(probe.getsockname()[0])
    except OSError:
        pytest.skip("no non-loopback interface to try")
    finally:
        probe.close()
