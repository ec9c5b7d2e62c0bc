"""The HTTP service: `POST /predict`, `GET /health`, `GET /metadata`, a page at `/`, OpenAPI docs at `/docs`.

    textfit serve outputs/demo --port 8000
    curl -s localhost:8000/predict -H 'content-type: application/json' -d '{"texts": ["A wonderful film."]}'

Every limit answers 413 with the limit's name and the flag that sets it; malformed JSON or a body of the wrong
shape answers 422 (400 when the bytes cannot be decoded at all); nothing a client sends can stop the service.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from textfit.predict import Classifier
from textfit.serve.batcher import MicroBatcher

PAGE = Path(__file__).with_name("page.html")


@dataclass(frozen=True)
class Limits:
    max_texts: int = 64  # texts per request
    max_chars: int = 20_000  # characters per text (truncation keeps max_length tokens anyway)
    max_body_bytes: int = 1_000_000  # raw request body


class PredictRequest(BaseModel):
    texts: list[str] = Field(description="texts to classify, answered in the same order", min_length=1)


class Prediction(BaseModel):
    """By the model's task, one of: label (single-label), labels (multi-label), value (regression)."""

    label: str | None = Field(None, description="single-label models: the most probable class")
    labels: list[str] | None = Field(None, description="multi-label models: every label at or above the threshold")
    value: float | None = Field(None, description="regression models: the predicted value")
    scores: dict[str, float] = Field(description="probability of every class or label (regression: the value)")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class Problem(BaseModel):
    detail: str


class BodyLimit:
    """ASGI middleware: a body over the limit gets 413 before any of it is parsed (Content-Length or counted)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, send, int(declared))
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._refuse(scope, send, size, at_least=more)
        body, sent = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, send: Any, size: int, at_least: bool = False) -> None:
        detail = (f"request body of {'more than ' if at_least else ''}{size:,} bytes is over the limit "
                  f"max_body_bytes={self.max_bytes:,} (textfit serve --max-body-bytes)")
        response = JSONResponse({"detail": detail}, status_code=413)
        await response(scope, None, send)


def create_app(clf: Classifier, limits: Limits = Limits(), *, batch_window: float = 0.005) -> FastAPI:
    """The service for one loaded classifier; requests are micro-batched into shared model calls."""
    batcher = MicroBatcher(clf.predict, max_texts=max(limits.max_texts, clf.batch_size), window=batch_window)
    metadata = _metadata(clf, limits)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="textfit classifier", version="1", lifespan=lifespan,
                  description=f"{metadata['base_model']} fine-tuned by textfit; labels: {', '.join(clf.labels)}")
    errors = {400: {"model": Problem, "description": "the body cannot be decoded (not UTF-8 JSON)"},
              413: {"model": Problem, "description": "a limit was exceeded; the detail names it"}}

    @app.post("/predict", response_model=PredictResponse, response_model_exclude_none=True, responses=errors)
    async def predict(request: PredictRequest) -> dict[str, Any]:
        """Label and per-class probabilities for each text, in the order given."""
        _check_limits(request.texts, limits)
        return {"predictions": await batcher.submit(request.texts)}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, and how many requests were answered in how many model calls."""
        return {"status": "ok", "requests": batcher.requests, "model_calls": batcher.batches}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        """Labels, base model, backend, limits and the evaluation metrics from training."""
        return metadata

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    return app


def _check_limits(texts: list[str], limits: Limits) -> None:
    """A 413 naming the limit and the flag that raises it, before the request takes a place in a batch."""
    if len(texts) > limits.max_texts:
        raise HTTPException(413, f"{len(texts)} texts in one request is over the limit "
                                 f"max_texts={limits.max_texts} (textfit serve --max-texts)")
    for index, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise HTTPException(413, f"texts[{index}] has {len(text):,} characters, over the limit "
                                     f"max_chars={limits.max_chars:,} (textfit serve --max-chars)")


def _metadata(clf: Classifier, limits: Limits) -> dict[str, Any]:
    folder, config = clf.folder, clf.folder.config
    front = folder.card_metadata()
    metrics = folder.metrics() if (folder.path / "metrics.json").is_file() else {}
    threshold = clf.threshold if clf.task.uses_threshold else None
    return {"labels": clf.labels, "task": clf.task.name, "threshold": threshold, "thresholds": clf.thresholds,
            "base_model": front.get("base_model") or (config.model if config else None),
            "dataset": config.dataset if config else None, "max_length": clf.max_length, "backend": clf.backend.name,
            "metrics": metrics.get("eval", {}), "eval_split": metrics.get("eval_split"), "limits": asdict(limits)}
