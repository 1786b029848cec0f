"""An application on Python's standard library routing on urlparse(<raw request target>).path,
unquoted: the raw target as gunicorn (RAW_URI) and uWSGI (REQUEST_URI) hand it to applications.
(http.server's own self.path has a leading // collapsed since 3.11.4, so it is read from the
request line.) urlparse reads a target starting with // as //netloc/path, and cuts ;params from
the last segment. Serves the secret (argv[2]) at /admin/secret on 127.0.0.1:argv[1]."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

SECRET = sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        raw_uri = self.requestline.split(" ")[1]
        path = unquote(urlparse(raw_uri).path)
        hit = path in ("/admin/secret", "/admin/secret/")
        body = (f"{self.command} {SECRET}" if hit else "not found").encode()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200 if hit else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
