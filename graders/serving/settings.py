"""Settings of the scoring endpoint (one pydantic model; its field descriptions are the CLI help).

Everything a deployment tunes lives here: where to listen, the API key, request limits, the
concurrency cap and its queue, timeouts, and which graders and scoring mode are offered.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from judgeforge.data.schema import DEFAULT_SCALE, Scale

__all__ = ["ServiceSettings", "ServiceMode", "SERVICE_MODES", "is_loopback_host"]

ServiceMode = Literal["sample", "expected", "vote"]
SERVICE_MODES: tuple[str, ...] = ("sample", "expected", "vote")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseModel):
    """Settings of the HTTP scoring API. Defaults are safe: loopback only, bounded everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="address to listen on (loopback unless you need "
                      "remote clients; then also set an API key)")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to listen on (0: any free "
                      "port)")
    api_key: str | None = Field(None, repr=False, description="if set, every route but "
                                "/healthz needs 'Authorization: Bearer <key>'")
    graders: tuple[str, ...] = Field(("helpfulness",), min_length=1, description="built-in "
                                     "graders to offer; the first is the default")
    default_mode: ServiceMode = Field("expected", description="scoring mode when a request "
                                      "names none: 'expected' (score-token probabilities; a "
                                      "score from any model), 'sample' or 'vote'")
    constrained: bool = Field(False, description="constrain decoding to the score format by "
                              "default in sample/vote modes (requests may override)")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body in "
                                "bytes; larger bodies get 413")
    max_batch: int = Field(64, ge=1, description="most items in one /v1/score/batch request; "
                           "more get 422")
    max_text_chars: int = Field(20_000, ge=1, description="longest query, response, message, "
                                "rubric or reference in characters; longer gets 422")
    max_messages: int = Field(64, ge=1, description="most chat messages in one item's "
                              "conversation; more get 422")
    max_concurrency: int = Field(32, ge=1, description="gradings sent to the model at once; "
                                 "the rest wait in a queue")
    max_queue: int = Field(1024, ge=0, description="gradings allowed to wait for a slot; beyond "
                           "that requests get 503 at once")
    queue_timeout_s: float = Field(60.0, gt=0, description="longest wait for a grading slot "
                                   "before 503")
    request_timeout_s: float = Field(60.0, gt=0, description="longest time one grading may take "
                                     "at the model server before 503")
    health_timeout_s: float = Field(2.0, gt=0, description="timeout of the model server's "
                                    "health check behind /healthz")
    health_cache_s: float = Field(2.0, ge=0, description="how long a model health check result "
                                  "is reused")
    max_connections: int = Field(256, ge=1, description="open HTTP connections (and requests "
                                 "in flight) at once; requests beyond get 503 (uvicorn "
                                 "limit_concurrency)")
    keep_alive_timeout_s: float = Field(5.0, gt=0, description="an idle keep-alive connection "
                                        "is closed after this many seconds")
    request_read_timeout_s: float = Field(30.0, gt=0, description="a connection that has not "
                                          "sent a whole request (headers and body) this many "
                                          "seconds after it opened or its last response is "
                                          "closed (slow or trickling clients)")

    scales: dict[str, str] = Field(default_factory=dict, description="score scale per grader, "
                                   "NAME=MIN-MAX (e.g. quality=1-5); others use 0-4")

    @field_validator("scales")
    @classmethod
    def _valid_scales(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            Scale.parse(text)  # raises ValueError naming the bad text
        return value

    def scale_of(self, name: str) -> Scale:
        """The scale offered for grader ``name``."""
        return Scale.parse(self.scales[name]) if name in self.scales else DEFAULT_SCALE

    @field_validator("graders", mode="before")
    @classmethod
    def _split_graders(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("api_key")
    @classmethod
    def _no_blank_key(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("api_key is empty; leave it unset to disable authentication")
        return value

    @model_validator(mode="after")
    def _unique_graders(self) -> ServiceSettings:
        if len(set(self.graders)) != len(self.graders):
            raise ValueError(f"graders are listed twice: {list(self.graders)}")
        return self

    @property
    def loopback(self) -> bool:
        """True when only this machine can reach the service."""
        return is_loopback_host(self.host)

    @property
    def default_grader(self) -> str:
        return self.graders[0]

    @classmethod
    def help(cls, name: str) -> str:
        """The description of field ``name`` (the CLI uses it as help text)."""
        return cls.model_fields[name].description or name
