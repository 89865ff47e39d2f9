"""Request bodies of the server's routes (OpenAI's where one exists), validated by pydantic, and the error
envelope every failure is answered in: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class APIError(Exception):
    """A request the server refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               413: "invalid_request_error", 429: "rate_limit_error", 503: "service_unavailable",
               504: "timeout_error"}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class Lenient(BaseModel):
    # clients send fields we do not use (user, logit_bias, ...): accepted and ignored, as OpenAI's server does
    model_config = ConfigDict(extra="ignore")


class StreamOptions(Lenient):
    include_usage: bool = False


class Sampling(Lenient):
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1)
    repetition_penalty: float = Field(default=1.0, gt=0.0)
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=8)
    min_tokens: int = Field(default=0, ge=0)
    """vLLM's extension: no end-of-text or stop token before this many (benchmarks of fixed lengths)"""
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise APIError(400, "stop: up to 4 non-empty strings.", "stop")
        return stops


class CompletionRequest(Sampling):
    prompt: str | list[str] = ""
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False


class ChatMessage(Lenient):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)


class EmbeddingRequest(Lenient):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    """base64: little-endian float32 bytes (what the openai client asks for by default)"""


class TextsRequest(Lenient):
    """/v1/classify, /v1/tag, /v1/score, /v1/translate: one text or a list."""

    model: str
    input: str | list[str]


class QAItem(Lenient):
    question: str = Field(min_length=1)
    context: str = Field(min_length=1)


class AnswerRequest(Lenient):
    model: str
    input: QAItem | list[QAItem]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]
