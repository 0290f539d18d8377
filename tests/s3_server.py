"""A real S3 endpoint on 127.0.0.1 for the object-storage tests: moto's server in its own process,
behind a small proxy that holds back GETs of keys under `slow/` (a store that stalls)."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

SLOW_SECONDS = 6.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _handler(upstream: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.command == "GET" and "/slow/" in self.path:
                time.sleep(SLOW_SECONDS)
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")]
            try:
                reply = httpx.request(self.command, upstream + self.path, headers=headers, content=body, timeout=30)
            except httpx.HTTPError:
                return
            try:
                self.send_response(reply.status_code)
                for key, value in reply.headers.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding"):
                        self.send_header(key, value)
                length = reply.headers.get("content-length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(reply.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.content)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

    return Handler


@contextmanager
def s3_endpoint():
    """(endpoint url) of moto's S3 behind the proxy; both stop when the block ends."""
    port = _free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upstream = f"http://127.0.0.1:{port}"
    proxy = _Proxy(("127.0.0.1", 0), _handler(upstream))
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            try:
                httpx.get(upstream + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start")
        yield f"http://127.0.0.1:{proxy.server_address[1]}", upstream
    finally:
        proxy.shutdown()
        moto.terminate()
        moto.wait(timeout=10)


def enforce_iam(upstream: str, deny_prefix: str) -> dict[str, str]:
    """An IAM user that may do anything in S3 but read keys under `deny_prefix` (an s3 ARN
    pattern); from now on the server checks every request. Returns the user's credentials."""
    import boto3

    iam = boto3.client(
        "iam", endpoint_url=upstream, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup"
    )
    iam.create_user(UserName="drift")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": deny_prefix},
        ],
    }
    iam.put_user_policy(UserName="drift", PolicyName="reader", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="drift")["AccessKey"]
    httpx.post(upstream + "/moto-api/reset-auth", content=b"0", timeout=10).raise_for_status()
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
