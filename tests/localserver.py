"""A local HTTP server for download tests (127.0.0.1, an ephemeral port, a background thread).

``files[path] = bytes`` serves 200; ``routes[path] = [(status, body), ...]`` serves the n-th
response to the n-th request of that path (the last one repeats); anything else is a 404.
``hits`` lists the request paths in order.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    def __init__(self, files=None):
        self.files = dict(files or {})
        self.routes = {}
        self.hits = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                if self.path in server.routes:
                    plan = server.routes[self.path]
                    status, body = plan[min(server.hits.count(self.path), len(plan)) - 1]
                elif self.path in server.files:
                    status, body = 200, server.files[self.path]
                else:
                    status, body = 404, b"not found"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
