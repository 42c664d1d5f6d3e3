"""Webhook receiver for scripts/bench-geofence.sh: answers every POST 200 at once and appends
one line per request to LOG: `<receive time, epoch s> <Meridian-Event-Id> <event ts> <type>
<signature ok 1|0>`. Prints `listening <port>` once bound (PORT 0 picks a free one).

usage: webhook_receiver.py PORT LOG SECRET
"""
import hashlib, hmac, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log_path, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
log = open(log_path, "a", buffering=1)
lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the node reuses its connections

    def do_POST(self):
        got = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        sig_ok = hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).hexdigest(),
                                     self.headers.get("Meridian-Signature", ""))
        try:
            ev = json.loads(body)
            ts, typ = ev["ts"], ev["type"]
        except Exception:
            ts, typ = "-", "-"
        with lock:
            log.write(f"{got:.6f} {self.headers.get('Meridian-Event-Id', '-')} {ts} {typ} {int(sig_ok)}\n")

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


srv = Server(("127.0.0.1", port), Hook)
print(f"listening {srv.server_address[1]}", flush=True)
srv.serve_forever()
