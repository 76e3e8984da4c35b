"""Test helpers: a tiny randomly initialised causal LM built from a config, and a real
OpenAI-compatible HTTP server around it on 127.0.0.1 (``/v1/chat/completions``, ``/v1/models``)
that can fail or stall its first requests on purpose."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# a small word vocabulary, so a random model's replies are words, and now and then a verdict
WORDS = ("the a is of and to in it that you for this be with on as are can not or but by so use "
         "first then more yes no good answer code list step one two three well sure [[A]] [[B]] [[C]] "
         "A B here note also very much help try make").split()


def save_tiny_chat_model(path: Path) -> Path:
    """A 2-layer GPT-2 over a word-level tokenizer with a chat template, saved to ``path``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<|endoftext|>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="<unk>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
                               "{% if add_generation_prompt %}assistant : {% endif %}")
    tokenizer.save_pretrained(path)
    config = GPT2Config(vocab_size=len(vocab), n_positions=2048, n_layer=2, n_head=2, n_embd=32,
                        bos_token_id=1, eos_token_id=1)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


class FakeOpenAIServer:
    """``ThreadingHTTPServer`` serving one local model under ``model_name``.

    Args:
        fail_first: answer the first N chat requests with HTTP 500.
        stall_first: hold the first N chat requests for ``stall_seconds`` before answering.
        delay: seconds added to every chat request (a slow server).
        fail_always: answer every chat request with HTTP 503.
        reply_text: answer every chat request with this text instead of the model's (a huge reply,
            a lone surrogate: what a hostile server sends back).
        pad_bytes: add this many bytes of padding to every reply body (a huge body).
        status_always: answer every chat request with this HTTP status (429: a rate-limit storm).
        malformed: answer every chat request with a body that is not JSON.
    """

    def __init__(self, model_dir: Path, model_name: str = "tiny-chat", fail_first: int = 0, stall_first: int = 0,
                 stall_seconds: float = 3.0, delay: float = 0.0, fail_always: bool = False,
                 reply_text: str | None = None, pad_bytes: int = 0, status_always: int | None = None,
                 malformed: bool = False) -> None:
        from models.generation import Decoding, LocalGenerator

        self.generator = LocalGenerator(model_dir, name=model_name)
        self.model_name = model_name
        self.fail_first, self.stall_first, self.stall_seconds = fail_first, stall_first, stall_seconds
        self.delay, self.fail_always = delay, fail_always
        self.reply_text, self.pad_bytes = reply_text, pad_bytes
        self.status_always, self.malformed = status_always, malformed
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._decoding = Decoding
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: dict) -> None:
                if outer.pad_bytes and code == 200:
                    body = {**body, "padding": "x" * outer.pad_bytes}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def do_GET(self):  # noqa: N802
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": outer.model_name, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):  # noqa: N802
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with outer._lock:
                    outer.requests.append(body)
                    n = len(outer.requests)
                if outer.fail_always:
                    self._send(503, {"error": {"message": "overloaded"}})
                    return
                if outer.status_always is not None:
                    self._send(outer.status_always, {"error": {"message": "rate limited"}})
                    return
                if outer.malformed:
                    data = b'{"choices": [ not json'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if n <= outer.fail_first:
                    self._send(500, {"error": {"message": "internal error (on purpose)"}})
                    return
                if n <= outer.fail_first + outer.stall_first:
                    time.sleep(outer.stall_seconds)
                if outer.delay:
                    time.sleep(outer.delay)
                if body.get("model") != outer.model_name:
                    self._send(404, {"error": {"message": f"model {body.get('model')!r} not served"}})
                    return
                decoding = outer._decoding(int(body.get("max_tokens", 64)), float(body.get("temperature", 0.0)),
                                           float(body.get("top_p", 1.0)))
                text = (outer.reply_text if outer.reply_text is not None
                        else outer.generator.chat([body["messages"]], decoding, [int(body.get("seed", 0))])[0])
                self._send(200, {"id": f"chatcmpl-{n}", "object": "chat.completion", "model": outer.model_name,
                                 "choices": [{"index": 0, "finish_reason": "length",
                                              "message": {"role": "assistant", "content": text}}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # handler threads are joined on close: one still inside torch when the interpreter exits
        # aborts it ("terminate called without an active exception")
        self.httpd.daemon_threads = False
        self.httpd.block_on_close = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_forever(model_dir: str, delay: float = 0.0) -> None:
    """Run a server in this process and print its URL (for subprocess tests)."""
    server = FakeOpenAIServer(Path(model_dir), delay=delay)
    with server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    import sys

    serve_forever(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
