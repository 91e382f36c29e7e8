"""Git's smart HTTP protocol on loopback: `git http-backend` behind a tiny HTTP server.

    python hack/stack_git_http.py --root DIR --port PORT

Serves every bare repository under DIR at http://127.0.0.1:PORT/<name>.git,
for fetching (Flux's source-controller, go-git) and pushing (git, when the
repository sets http.receivepack). Flux's go-git speaks only the smart
protocol, which git's own CGI program implements; this server just hands each
request to it, as a web server's CGI support would (Python 3.13 drops
http.server's CGI handler, hence these few lines). No authentication: it
listens on 127.0.0.1 only, for the local stack.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Request headers git http-backend reads, as CGI passes them (HTTP_<NAME>).
FORWARDED_HEADERS = ("Content-Encoding", "Git-Protocol")


class GitHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GitServer

    def do_GET(self) -> None:
        self._run_backend(b"")

    def do_POST(self) -> None:
        self._run_backend(self._request_body())

    def _request_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            # git sends large pushes chunked (over http.postBuffer).
            body = bytearray()
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return bytes(body)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _run_backend(self, body: bytes) -> None:
        url = urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.server.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            # http-backend refuses anonymous pushes unless a repository opts in (http.receivepack).
            "REMOTE_USER": "",
        }
        for header in FORWARDED_HEADERS:
            if value := self.headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = value
        result = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env, check=False)
        # CGI headers end at the first blank line; http-backend writes CRLF line ends.
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        if result.returncode != 0 and not head:
            status, payload = 500, result.stderr
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, root: str) -> None:
        super().__init__(("127.0.0.1", port), GitHandler)
        self.root = root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder holding the bare repositories")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    GitServer(args.port, os.path.abspath(args.root)).serve_forever()


if __name__ == "__main__":
    main()
