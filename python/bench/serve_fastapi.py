"""serving_api, py-fastapi and py-fastapi-pyo3: the logistic scorer as a FastAPI app on uvicorn.

Usage: python3 serve_fastapi.py --port P [--scorer python|pyo3]

``POST /score`` with ``{"x": [32 numbers]}`` answers ``{"score": s}``; ``GET /health`` answers
200. The request model (pydantic) requires exactly 32 floats; FastAPI answers 422 for a body of
the wrong shape and for one that is not JSON. One uvicorn worker process with uvicorn's defaults
(``uvicorn[standard]``: uvloop and httptools when installed), except the access log, which is
off as it is for the other servers.

``--scorer python`` (py-fastapi) scores in pure Python; ``--scorer pyo3`` (py-fastapi-pyo3)
calls ``rpb_native.logistic_score(x)``, the Rust scorer built as a PyO3 extension module, imported
only in that mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

import uvicorn
from _serving import HOST, N_FEATURES, fail, logistic_score, server_parser
from fastapi import FastAPI
from pydantic import BaseModel, Field

Scorer = Callable[[Sequence[float]], float]


class ScoreRequest(BaseModel):
    x: Annotated[list[float], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


class ScoreResponse(BaseModel):
    score: float


def load_scorer(name: str) -> Scorer:
    """The scoring function of ``--scorer NAME``."""
    if name == "python":
        return logistic_score
    try:
        from rpb_native import logistic_score as native_score
    except ImportError as exc:
        fail(
            f"--scorer pyo3 needs the PyO3 module rpb_native ({exc}). "
            "Install it into this Python, or use --scorer python"
        )
    return native_score


def create_app(score: Scorer) -> FastAPI:
    """The FastAPI application scoring with ``score``."""
    app = FastAPI(title="serving_api", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # async def: the handler does no blocking I/O, so it runs on the event loop instead of
    # being handed to the thread pool (FastAPI's advice for such endpoints).
    @app.post("/score")
    async def score_row(request: ScoreRequest) -> ScoreResponse:
        return ScoreResponse(score=score(request.x))

    return app


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until SIGTERM or Ctrl-C."""
    parser = server_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scorer",
        choices=["python", "pyo3"],
        default="python",
        help="pure-Python scorer (default) or the Rust one through PyO3",
    )
    args = parser.parse_args(argv)
    score = load_scorer(args.scorer)
    app = create_app(score)
    # uvicorn reports a port it cannot bind on its log and exits with status 1.
    uvicorn.run(app, host=HOST, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
