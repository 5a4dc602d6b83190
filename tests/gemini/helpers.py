"""What the google-genai tests share: real ``genai.Client``s (Gemini API, Vertex AI in express and project mode)
pointed at the local server, sync (``client.models``) and async (``client.aio.models``), and one call helper."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterator
from typing import Any

from google import genai
from google.genai import types
from google.genai._api_client import BaseApiClient
from google.oauth2.credentials import Credentials

from costspan.testing import ProviderServer
from support import API_KEY, Driver, make_driver

PROMPT = "Summarise the quarterly report in three bullet points."
PLATFORMS = ("gemini", "vertex-express", "vertex")
PROVIDER_NAMES = {"gemini": "gcp.gemini", "vertex-express": "gcp.vertex_ai", "vertex": "gcp.vertex_ai"}


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def gemini_client(server: ProviderServer, platform: str = "gemini") -> genai.Client:
    """A real client of the local server. Vertex AI's project mode takes OAuth credentials: a token that never
    expires is never refreshed, so nothing leaves the machine. Each client would load the CA bundle twice (half a
    second) for TLS the loopback server does not speak; the tests' clients share one context."""
    tls = _tls()
    # Newer SDKs also make one for aiohttp and websockets ("ssl"), which older ones would hand httpx, unknown.
    websockets = {"ssl": tls} if hasattr(BaseApiClient, "_ensure_websocket_ssl_ctx") else {}
    options = types.HttpOptions(
        base_url=server.url, client_args={"verify": tls}, async_client_args={"verify": tls, **websockets}
    )
    if platform == "gemini":
        return genai.Client(api_key=API_KEY, http_options=options)
    if platform == "vertex-express":
        return genai.Client(vertexai=True, api_key=API_KEY, http_options=options)
    credentials = Credentials(token="ya29.costspan-test-token")  # type: ignore[no-untyped-call]
    return genai.Client(
        vertexai=True, project="costspan-test", location="us-central1", credentials=credentials, http_options=options
    )


def drive(mode: str, server: ProviderServer, platform: str = "gemini") -> Iterator[Driver]:
    """A Driver over one client: ``client.models`` sync, ``client.aio.models`` async (the Driver's client is the
    client or its ``aio`` twin; both have ``.models``)."""
    yield from make_driver(mode, lambda: gemini_client(server, platform), lambda: gemini_client(server, platform).aio)


def generate(driver: Driver, *, stream: bool = False, model: str = "gemini-2.5-flash", **config: Any) -> Any:
    """One call as users write it: ``generate_content(...)``, or ``for chunk in generate_content_stream(...)``
    (the chunks, as a list)."""
    models = driver.client.models
    arguments = {"model": model, "contents": PROMPT, "config": config or None}
    if not stream:
        return driver.run(models.generate_content(**arguments))
    return driver.collect(driver.run(models.generate_content_stream(**arguments)))


def text_of(result: Any) -> str:
    """The text a call gave: a response's, or its stream chunks' joined."""
    chunks = result if isinstance(result, list) else [result]
    return "".join(chunk.text or "" for chunk in chunks)
