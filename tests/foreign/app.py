#!/usr/bin/python3
"""A small app for the http handler's tests (Python's http.server, from Debian's python3).

POST /ok            200 {"id": <Forq-Job-Id>, "attempt": <Forq-Attempt>, "body": <request JSON>}
POST /flaky         500 the first time per job id, then 200 "fine"
POST /busy          429 with Retry-After: 1 the first time per job id, then 200 "done"
POST /missing       404 "no such thing"
POST /slow?ms=N     waits N ms, then 200 "slow"
GET  /calls         {job id: [call time in ms, ...]} for every POST so far

Prints "PORT <n>" on stdout once it listens on 127.0.0.1 (port 0: any free one).
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

calls = {}
lock = threading.Lock()


class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as forq expects

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        data = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            self.reply(200, json.dumps(calls))

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        job = self.headers.get("Forq-Job-Id", "")
        with lock:
            calls.setdefault(job, []).append(int(time.time() * 1000))
            n = len(calls[job])
        url = urlparse(self.path)
        if url.path == "/ok":
            self.reply(200, json.dumps({"id": job, "attempt": int(self.headers["Forq-Attempt"]),
                                        "queue": self.headers["Forq-Queue"], "body": body}))
        elif url.path == "/flaky":
            self.reply(500, "try later") if n == 1 else self.reply(200, '"fine"')
        elif url.path == "/busy":
            if n == 1:
                self.reply(429, "slow down", {"Retry-After": "1"})
            else:
                self.reply(200, '"done"')
        elif url.path == "/slow":
            time.sleep(int(parse_qs(url.query).get("ms", ["0"])[0]) / 1000)
            self.reply(200, '"slow"')
        elif url.path == "/big":
            n = int(parse_qs(url.query).get("bytes", ["2"])[0])  # a JSON string n bytes long
            self.reply(200, '"' + "a" * (n - 2) + '"')
        elif url.path == "/moved":
            self.reply(302, "see elsewhere", {"Location": "/ok"})
        else:
            self.reply(404, "no such thing")


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), App)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
