"""The HTTP routes of ``slam serve``: the OpenAI audio transcription API, a model list and a health check.

Errors are answered as the OpenAI API answers them (``{"error": {"message", "type", "param",
"code"}}``), so its clients raise them with the message: 400 for audio that cannot be read or is
too long and for unsupported options, 413 for an upload over the bound, 503 when too many
requests wait (with ``Retry-After``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse

from slam_core.errors import SlamError
from slam_core.runtime.serve.batcher import Overloaded, RequestBatcher
from slam_core.runtime.serve.transcriber import Transcriber, read_upload

#: ``response_format`` values answered; OpenAI's srt, vtt and diarized_json need timestamps we do not have.
RESPONSE_FORMATS = ("json", "text", "verbose_json")


@dataclass(frozen=True)
class ServeSettings:
    """Bounds of one server."""

    model_name: str
    max_batch_size: int = 8
    max_wait_ms: float = 20.0
    max_pending: int = 64
    max_upload_bytes: int = 25 * 2**20  # OpenAI's own limit


class RequestError(Exception):
    """A request the server refuses: its HTTP status, message, and the form field at fault."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.param, self.kind = status, param, kind


def create_app(transcriber: Transcriber, settings: ServeSettings):
    """The FastAPI application serving ``transcriber`` within ``settings``' bounds."""
    batcher = RequestBatcher(
        transcriber.transcribe,
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_wait_ms / 1000,
        max_pending=settings.max_pending,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="slam serve", lifespan=lifespan)
    started = time.time()

    _refuse_as_openai_does(app, settings)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": settings.model_name, "uptime_s": round(time.time() - started, 1),
                **batcher.stats.as_dict()}  # fmt: skip

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        entry = {"id": settings.model_name, "object": "model", "created": int(started), "owned_by": "slam"}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()],
        response_format: Annotated[str, Form()] = "json",
        language: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        temperature: Annotated[float | None, Form()] = None,
    ):
        del model, prompt  # one model is served, whatever the name; its task head writes its own prompt
        check_options(response_format, temperature)
        clip = await read_clip(file, transcriber, settings)
        try:
            text = await batcher.submit(clip)
        except Overloaded as exc:
            raise RequestError(503, f"the server is busy: {exc}; retry shortly", kind="server_overloaded") from None
        if response_format == "text":
            return PlainTextResponse(text + "\n")
        if response_format == "verbose_json":
            seconds = len(clip.waveform) / clip.sample_rate
            return {"task": "transcribe", "language": language or "unknown", "duration": seconds, "text": text}
        return {"text": text}

    return app


def _refuse_as_openai_does(app: FastAPI, settings: ServeSettings) -> None:
    """Answer a :class:`RequestError` in the OpenAI API's error shape; refuse a declared oversize upload
    before its body is read."""

    @app.exception_handler(RequestError)
    async def refuse(_request, exc: RequestError):
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        body = {"error": {"message": str(exc), "type": exc.kind, "param": exc.param, "code": None}}
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.middleware("http")
    async def bound_upload(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes + 2**16:
            return await refuse(request, _too_large(int(declared), settings))
        return await call_next(request)


def check_options(response_format: str, temperature: float | None) -> None:
    if response_format not in RESPONSE_FORMATS:
        raise RequestError(
            400, f"response_format {response_format!r} is not served; use one of {', '.join(RESPONSE_FORMATS)}",
            param="response_format",
        )  # fmt: skip
    if temperature not in (None, 0, 0.0):
        raise RequestError(
            400, f"temperature {temperature} is not served: the model decodes greedily or by beam search "
            "(temperature 0)",
            param="temperature",
        )  # fmt: skip


async def read_clip(file, transcriber: Transcriber, settings: ServeSettings):
    """The uploaded clip, read within the upload bound and checked against the model's longest clip."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise _too_large(len(data), settings)
    name = file.filename or "file"
    try:
        clip = read_upload(data, name)
    except SlamError as exc:
        raise RequestError(400, str(exc), param="file") from None
    seconds = len(clip.waveform) / clip.sample_rate
    if seconds > transcriber.max_seconds:
        raise RequestError(
            400, f"{name}: {seconds:.1f} s of audio, longer than the {transcriber.max_seconds:g} s this model takes "
            "(data.max_duration_s); split it", param="file",
        )  # fmt: skip
    return clip


def _too_large(size: int, settings: ServeSettings) -> RequestError:
    limit = settings.max_upload_bytes / 2**20
    return RequestError(413, f"the upload is {size / 2**20:.1f} MiB, over this server's {limit:g} MiB", param="file")
