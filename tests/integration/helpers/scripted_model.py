"""An OpenAI-compatible chat-completions server on 127.0.0.1 that plays a script.

Each POST to ``/v1/chat/completions`` takes the next scripted turn: a tool call
or a final answer, with the ``usage`` numbers the test wants the
instrumentation to see. The request is kept, so a test can check what the
framework sent. A request past the end of the script gets a 500, so a
workflow that calls the model more often than scripted fails loudly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Turn:
    """One scripted model response."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def completion(self, model: str, index: int) -> dict[str, Any]:
        if self.tool is not None:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{index}",
                        "type": "function",
                        "function": {"name": self.tool, "arguments": json.dumps(self.arguments)},
                    }
                ],
            }
            finish = "tool_calls"
        else:
            message, finish = {"role": "assistant", "content": self.text}, "stop"
        return {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion",
            "created": 1_700_000_000 + index,
            "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": {
                "prompt_tokens": self.input_tokens,
                "completion_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            },
        }


class ScriptedModel:
    """The server's state: the turns left and the requests seen."""

    def __init__(self, turns: list[Turn]) -> None:
        self._turns = list(turns)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""

    def next(self, request: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            self.requests.append(request)
            if not self._turns:
                return None
            turn = self._turns.pop(0)
            return turn.completion(str(request.get("model", "")), len(self.requests))

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._turns)


@contextmanager
def scripted_model(turns: list[Turn]) -> Iterator[ScriptedModel]:
    """Serve ``turns`` on a random loopback port for the duration of the block."""
    model = ScriptedModel(turns)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            response = model.next(request) if self.path.endswith("/chat/completions") else None
            body = json.dumps(response or {"error": {"message": "script exhausted"}}).encode()
            self.send_response(200 if response is not None else 500)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="scripted-model", daemon=True)
    thread.start()
    model.base_url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
