"""A local HTTP server for download tests (127.0.0.1, an ephemeral port, a background thread).

``files[path] = bytes`` serves 200; ``routes[path] = [(status, body), ...]`` serves the n-th
response to the n-th request of that path (the last one repeats); anything else is a 404.
``handlers[path] = fn`` lets ``fn(handler, n)`` answer the n-th request (1-based) of that path
itself (headers, a body cut short or longer than announced, a stall). ``hits`` lists the request
paths in order, ``headers`` the request headers of each.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    def __init__(self, files=None):
        self.files = dict(files or {})
        self.routes = {}
        self.handlers = {}
        self.hits = []
        self.headers = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                server.headers.append(dict(self.headers))
                if self.path in server.handlers:
                    server.handlers[self.path](self, server.hits.count(self.path))
                    return
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
