"""A scripted stand-in for a cloud LLM speaking the OpenAI chat-completions wire
format (a cloud model cannot run here; the protocol is the real one).

POST .../chat/completions with `"stream": true` is answered as Server-Sent
Events, as api.openai.com does:
    data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,
           "choices":[{"index":0,"delta":{...},"finish_reason":null}]}\\n\\n
    ...
    data: [DONE]\\n\\n
Text comes as several `delta.content` fragments; a tool call as `delta.tool_calls`
fragments: the first with index, id, type and function.name (arguments ""), then
the arguments JSON split over several chunks, then a chunk with
`finish_reason: "tool_calls"`. Without `stream` the whole `chat.completion`
object is returned.

Each request takes the next reply of the script (the last one repeats);
every request body is recorded for the test to inspect."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import procs


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)   # [{"name":..,"arguments":{..}}]
    status: int = 200                                        # != 200: an error response
    delay: float = 0.0                                       # before the first byte
    chunk_delay: float = 0.02                                # between SSE chunks


def text(t: str, **kw) -> Reply:
    return Reply(text=t, **kw)


def tool_call(name: str, arguments: dict, **kw) -> Reply:
    return Reply(tool_calls=[{"name": name, "arguments": arguments}], **kw)


def error(status: int = 500, **kw) -> Reply:
    return Reply(status=status, **kw)


@dataclass
class Request:
    path: str
    headers: dict
    body: dict
    at: float

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    @property
    def tools(self) -> list[dict]:
        return self.body.get("tools", [])

    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name") for t in self.tools]

    def tool_results(self) -> list[dict]:
        return [m for m in self.messages if m.get("role") == "tool"]


def _split(s: str, n: int) -> list[str]:
    """s in about n pieces (at least one)."""
    if not s:
        return [""]
    k = max(1, -(-len(s) // n))
    return [s[i:i + k] for i in range(0, len(s), k)]


class OpenAIMock:
    def __init__(self, model: str = "test-model", host: str = "127.0.0.1"):
        self.model = model
        self.host = host
        self.port = procs.free_port("sip")
        self.url = f"http://{host}:{self.port}"
        self.requests: list[Request] = []
        self.replies: list[Reply] = [text("Okay.")]
        self._n = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._seq = 0
        self.issued_call_ids: list[str] = []   # tool-call ids sent, in order

    # -------------------------------------------------------- control
    def script(self, *replies: Reply) -> "OpenAIMock":
        with self._lock:
            self.replies = list(replies)
            self._n = 0
            self.requests.clear()
            self.issued_call_ids.clear()
        return self

    def wait_requests(self, n: int, timeout: float = 30.0) -> list[Request]:
        procs.wait_until(lambda: len(self.requests) >= n, timeout, interval=0.05,
                         what=f"{n} chat-completions request(s) at the LLM mock "
                              f"(got {len(self.requests)})")
        return list(self.requests)

    def _next_reply(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            r = self.replies[min(self._n, len(self.replies) - 1)]
            self._n += 1
            self._seq += 1
            return r

    # -------------------------------------------------------- wire format
    def _ids(self) -> tuple[str, int]:
        return f"chatcmpl-mock{self._seq:04d}", int(time.time())

    def chunks(self, r: Reply) -> list[dict]:
        """The chat.completion.chunk objects for a reply, in order."""
        cid, created = self._ids()

        def chunk(delta: dict, finish=None) -> dict:
            return {"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": self.model, "system_fingerprint": "fp_mock",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                 "finish_reason": finish}]}

        out = [chunk({"role": "assistant", "content": None if r.tool_calls else ""})]
        if r.tool_calls:
            for i, tc in enumerate(r.tool_calls):
                call_id = f"call_mock{self._seq:02d}{i}"
                self.issued_call_ids.append(call_id)
                out.append(chunk({"tool_calls": [{"index": i, "id": call_id, "type": "function",
                                                  "function": {"name": tc["name"], "arguments": ""}}]}))
                for frag in _split(json.dumps(tc["arguments"]), 4):
                    out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}))
            out.append(chunk({}, "tool_calls"))
        else:
            words = r.text.split(" ")
            pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
            for p in pieces:
                out.append(chunk({"content": p}))
            out.append(chunk({}, "stop"))
        return out

    def completion(self, r: Reply) -> dict:
        cid, created = self._ids()
        msg: dict = {"role": "assistant", "content": r.text or None}
        if r.tool_calls:
            self.issued_call_ids += [f"call_mock{self._seq:02d}{i}" for i in range(len(r.tool_calls))]
            msg["tool_calls"] = [{"id": f"call_mock{self._seq:02d}{i}", "type": "function",
                                  "function": {"name": tc["name"], "arguments": json.dumps(tc["arguments"])}}
                                 for i, tc in enumerate(r.tool_calls)]
        return {"id": cid, "object": "chat.completion", "created": created, "model": self.model,
                "choices": [{"index": 0, "message": msg, "logprobs": None,
                             "finish_reason": "tool_calls" if r.tool_calls else "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

    # -------------------------------------------------------- server
    def start(self) -> "OpenAIMock":
        mock = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _json(self, code: int, obj: dict) -> None:
                b = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    return self._json(200, {"object": "list", "data": [
                        {"id": mock.model, "object": "model", "created": 0, "owned_by": "mock"}]})
                self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": f"unknown path {self.path}",
                                                      "type": "invalid_request_error"}})
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self._json(400, {"error": {"message": "body is not JSON",
                                                      "type": "invalid_request_error"}})
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                              time.time())
                r = mock._next_reply(req)
                if r.delay:
                    time.sleep(r.delay)
                if r.status != 200:
                    return self._json(r.status, {"error": {"message": "mock failure",
                                                           "type": "server_error"}})
                if not body.get("stream"):
                    return self._json(200, mock.completion(r))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for c in mock.chunks(r):
                        self._chunk(f"data: {json.dumps(c)}\n\n".encode())
                        time.sleep(r.chunk_delay)
                    self._chunk(b"data: [DONE]\n\n")
                    self._chunk(b"")
                except OSError:
                    pass

            def _chunk(self, b: bytes) -> None:
                self.wfile.write(f"{len(b):x}\r\n".encode() + b + b"\r\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer((self.host, self.port), H)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# ------------------------------------------------------------------ a raw client
def stream_chat(url: str, body: dict, timeout: float = 10.0,
                api_key: str = "sk-test") -> tuple[list[dict], dict]:
    """POST a streaming chat-completions request with a raw socket-level HTTP client
    (http.client), parse the SSE stream; returns (chunks, assembled message) where
    the message has content and tool_calls put together from the deltas, as a
    client library would."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    conn.request("POST", (u.path.rstrip("/") or "") + "/v1/chat/completions",
                 json.dumps({**body, "stream": True}),
                 {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    if not resp.getheader("Content-Type", "").startswith("text/event-stream"):
        raise RuntimeError(f"not an event stream: {resp.getheader('Content-Type')}")
    chunks, done = [], False
    buf = b""
    while True:
        d = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not d:
            break
        buf += d
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            for line in ev.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                data = line[6:]
                if data == b"[DONE]":
                    done = True
                else:
                    chunks.append(json.loads(data))
    conn.close()
    if not done:
        raise RuntimeError("stream ended without data: [DONE]")
    msg: dict = {"content": "", "tool_calls": [], "finish_reason": None}
    for c in chunks:
        ch = c["choices"][0]
        delta = ch.get("delta", {})
        if delta.get("content"):
            msg["content"] += delta["content"]
        for tc in delta.get("tool_calls") or []:
            i = tc["index"]
            while len(msg["tool_calls"]) <= i:
                msg["tool_calls"].append({"id": None, "name": "", "arguments": ""})
            t = msg["tool_calls"][i]
            t["id"] = tc.get("id") or t["id"]
            fn = tc.get("function") or {}
            t["name"] += fn.get("name") or ""
            t["arguments"] += fn.get("arguments") or ""
        if ch.get("finish_reason"):
            msg["finish_reason"] = ch["finish_reason"]
    return chunks, msg
