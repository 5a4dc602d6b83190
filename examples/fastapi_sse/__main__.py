"""``python -m examples.fastapi_sse``: serve on 127.0.0.1:8000 against the real APIs (ANTHROPIC_API_KEY, and
OPENAI_API_KEY for OpenAI models); ``--demo``: a tour of the service, offline, against costspan's local server."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from .app import create_app
from .demo import run_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.fastapi_sse", description=__doc__)
    parser.add_argument("--demo", action="store_true", help="run offline against costspan's local provider server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args(argv)
    if arguments.demo:
        run_demo()
        return 0
    if not os.environ.get("ANTHROPIC_API_KEY"):
        print("ANTHROPIC_API_KEY is not set: set it to serve Claude, or try --demo (no key needed)", file=sys.stderr)
        return 2
    try:
        app = create_app()
    except ValueError as bad:  # a setting: DAILY_BUDGET_USD, REDIS_URL
        print(bad, file=sys.stderr)
        return 2
    uvicorn.run(app, host=arguments.host, port=arguments.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
