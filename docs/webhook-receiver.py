#!/usr/bin/env python3
"""A Switchboard webhook receiver: verifies each delivery and prints its
events, one JSON line each, to stdout. Python 3 standard library only.

    python3 docs/webhook-receiver.py --port 9000 --secret "$WEBHOOK_SECRET"

It does the three things every receiver must:
- checks `Switchboard-Signature` (HMAC-SHA256 of "<t>.<raw body>" with the
  webhook's secret, compared in constant time) and refuses a delivery whose
  `t` is more than 5 minutes from its clock (a replay);
- answers 2xx only once the events are safely handled (here: printed);
  anything else makes Switchboard send them again, later;
- de-duplicates by event `id`: delivery is at least once.

With `--port 0` it listens on a free port and prints `listening <port>`
first (the tests use that).
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_S = 300
SEEN_MAX = 100_000


def verify(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """True when `header` signs `body` with `secret`, recently."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now - t) > TOLERANCE_S:
        return False
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


class Receiver(BaseHTTPRequestHandler):
    secret = b""
    seen = OrderedDict()  # event ids already handled, oldest first

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        signature = self.headers.get("Switchboard-Signature", "")
        if not verify(self.secret, signature, body, time.time()):
            self.send_response(401)
            self.end_headers()
            return
        for event in json.loads(body)["events"]:
            if event["id"] in self.seen:
                continue
            self.seen[event["id"]] = True
            if len(self.seen) > SEEN_MAX:
                self.seen.popitem(last=False)
            print(json.dumps(event), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    Receiver.secret = args.secret.encode()
    server = HTTPServer((args.host, args.port), Receiver)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
