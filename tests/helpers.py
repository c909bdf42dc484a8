"""Helpers shared by the test files: run the CLI in-process, check its one-line errors, serve HTTP locally.

Plain functions (imported as `from helpers import run`), not conftest fixtures: the tests call them
with arguments, and a module-scoped fixture in a test file may call them too.
"""

import contextlib
import http.server
import threading

from rnnlm import cli


def run(capsys, *argv):
    """`rnnlm ARGV...` through `rnnlm.cli.main` (each argument passed through str): (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, message):
    """The CLI failed as a user should see it: exit code 2, one line `rnnlm: error: ...` containing `message`."""
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("rnnlm: error: ") and message in err, err
    assert "Traceback" not in err


@contextlib.contextmanager
def local_http_server(handler):
    """Serve `handler` (a BaseHTTPRequestHandler class) on 127.0.0.1, a free port; yields the base URL.

    One thread per request, daemon threads (a handler that never finishes does not hold up the shutdown).
    """
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def serving_files(files, announce_extra=None):
    """Serve `files` ({path: bytes}) on a local server, 404 for any other path; yields (base URL, hits).

    hits lists every requested path, in order. announce_extra ({path: n}): announce n more bytes in
    Content-Length than are sent (a truncated download)."""
    hits, extra = [], announce_extra or {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + extra.get(self.path, 0)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with local_http_server(Handler) as url:
        yield url, hits
