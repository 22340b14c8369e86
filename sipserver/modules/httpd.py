"""httpd: an embedded HTTP server other modules hang pages on (OpenSIPS 3.x httpd).

Not a 1.6 module: it comes from OpenSIPS 3.x, configured the same way::

    loadmodule "httpd.so"
    modparam("httpd", "ip", "127.0.0.1")
    modparam("httpd", "port", 8888)

One process ("HTTPD") serves every root registered by other modules in
their mod_init through `httpd_api(httpd_module).register_root(...)`; mi_http
registers `mi`, so the MI answers at `http://ip:port/mi`. The socket is
bound in mod_init, so a port in use stops the server at start-up with a
clear message. With tls_cert_file and tls_key_file set it speaks HTTPS.

Parameters: ip (default: every address), port (8888), buf_size,
post_buf_size (the largest request body, at least 256 bytes; default 1 MB
here, 3.x's 1024 only bounded form posts), tls_cert_file, tls_key_file,
tls_ciphers (OpenSSL cipher list).
"""

from __future__ import annotations

import http.server
import ipaddress
import select
import socket
import socketserver
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.exports import LoadedModule, MICmdExport, ModuleExports, ParamExport, ProcExport
from ..core.modload import ModuleError
from ..core.runtime import L_DBG, L_ERR, L_INFO
from ..mi.procloop import Stopped, StopWatch
from ..mi.tree import MIReply

DEFAULT_PORT = 8888
MIN_POST_BUF_SIZE = 256
DEFAULT_POST_BUF_SIZE = 1 << 20
REQUEST_TIMEOUT = 30.0  # seconds a client may take to send its request

# handler(method, path, headers, body) -> (status, content_type, body)
PageHandler = Callable[[str, str, Any, bytes], tuple[int, str, bytes]]


@dataclass(slots=True)
class Root:
    root: str
    module: str
    handler: PageHandler


@dataclass(slots=True)
class HttpdAPI:
    """What other modules use: the roots and the server's address."""

    roots: list[Root] = field(default_factory=list)
    sock: socket.socket | None = None
    tls: ssl.SSLContext | None = None
    max_body: int = DEFAULT_POST_BUF_SIZE
    address: tuple[str, int] = ("", DEFAULT_PORT)

    def register_root(self, root: str, module: str, handler: PageHandler) -> None:
        root = root.strip("/")
        if not root or "/" in root:
            raise ModuleError(f"httpd: bad root path {root!r} for {module}")
        if any(r.root == root for r in self.roots):
            raise ModuleError(f"httpd: root /{root} is already taken")
        self.roots.append(Root(root, module, handler))

    def find(self, path: str) -> Root | None:
        first = path.split("?", 1)[0].lstrip("/").split("/", 1)[0]
        for r in self.roots:
            if r.root == first:
                return r
        return None


def httpd_api(module: LoadedModule) -> HttpdAPI:
    """The API of a loaded httpd module (3.x load_httpd_api)."""
    if not isinstance(module.state, HttpdAPI):
        module.state = HttpdAPI()
    return module.state


def _mod_init(module: LoadedModule) -> None:
    p = module.params
    api = httpd_api(module)
    port = p.get("port")
    if not isinstance(port, int) or not 0 < port <= 65535:
        raise ModuleError(f"httpd: bad port {port!r} (1-65535)")
    ip = p.get("ip") or ""
    family = socket.AF_INET
    if ip:
        try:
            family = socket.AF_INET6 if ipaddress.ip_address(ip.strip("[]")).version == 6 \
                else socket.AF_INET
            ip = ip.strip("[]")
        except ValueError:
            try:
                info = socket.getaddrinfo(ip, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
            except socket.gaierror:
                raise ModuleError(f"httpd: cannot resolve ip {ip!r}") from None
            family, ip = info[0][0], info[0][4][0]
    post = p.get("post_buf_size")
    if not isinstance(post, int) or post < MIN_POST_BUF_SIZE:
        raise ModuleError(f"httpd: post_buf_size {post!r} is below the minimum {MIN_POST_BUF_SIZE}")
    api.max_body = post
    cert, key = p.get("tls_cert_file"), p.get("tls_key_file")
    if bool(cert) != bool(key):
        raise ModuleError("httpd: HTTPS needs both tls_cert_file and tls_key_file")
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(cert, key)
            if p.get("tls_ciphers"):
                ctx.set_ciphers(p["tls_ciphers"])
        except (OSError, ssl.SSLError) as e:
            raise ModuleError(f"httpd: TLS set-up failed: {e}") from None
        api.tls = ctx
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((ip, port))
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise ModuleError(f"httpd: cannot listen on {ip or '*'}:{port}: {e.strerror}") from None
    api.sock = sock
    api.address = sock.getsockname()[:2]


def _destroy(module: LoadedModule) -> None:
    if isinstance(module.state, HttpdAPI) and module.state.sock is not None:
        module.state.sock.close()


# ------------------------------------------------------------ the process

class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    rt: Any = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if self.rt is not None:
            self.rt.log(L_DBG, f"httpd: request from {client_address[0]} failed: "
                               f"{type(exc).__name__}: {exc}")


def _handler_class(api: HttpdAPI, rt: Any) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "sipserver-httpd"
        sys_version = ""
        protocol_version = "HTTP/1.0"
        timeout = REQUEST_TIMEOUT

        def setup(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(REQUEST_TIMEOUT)
                self.request.do_handshake()
            super().setup()

        def log_message(self, format: str, *args: Any) -> None:
            rt.log(L_DBG, f"httpd: {self.address_string()} {format % args}")

        def _serve(self, method: str) -> None:
            root = api.find(self.path)
            if root is None:
                self._send(404, "text/plain", b"Not Found\n")
                return
            body = b""
            length = self.headers.get("Content-Length")
            if length:
                try:
                    n = int(length)
                except ValueError:
                    self._send(400, "text/plain", b"Bad Request\n")
                    return
                if n < 0 or n > api.max_body:
                    self._send(413, "text/plain", b"Request Entity Too Large\n")
                    return
                body = self.rfile.read(n)
            try:
                status, ctype, page = root.handler(method, self.path, self.headers, body)
            except Exception as e:
                rt.log(L_ERR, f"httpd: /{root.root} handler failed: {type(e).__name__}: {e}")
                status, ctype, page = 500, "text/plain", b"Internal Server Error\n"
            self._send(status, ctype, page)

        def _send(self, status: int, ctype: str, page: bytes) -> None:
            self.send_response(status)
            if page:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            if page and self.command != "HEAD":
                self.wfile.write(page)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

    return Handler


def httpd_process(module: LoadedModule, rank: int) -> None:
    """The "HTTPD" process: serve the registered roots until SIGTERM."""
    rt = module.rt
    api = httpd_api(module)
    if api.sock is None:
        rt.log(L_ERR, "httpd: no listening socket (mod_init did not run)")
        raise SystemExit(1)
    server = _Server(api.address, _handler_class(api, rt), bind_and_activate=False)
    server.rt = rt
    server.socket.close()
    server.socket = api.tls.wrap_socket(api.sock, server_side=True,
                                        do_handshake_on_connect=False) \
        if api.tls is not None else api.sock
    server.socket.setblocking(False)
    rt.log(L_INFO, f"httpd: serving {', '.join('/' + r.root for r in api.roots) or 'nothing'}"
                   f" on {api.address[0] or '*'}:{api.address[1]}")
    try:
        with StopWatch() as watch:
            while True:
                watch.wait({server.fileno(): select.POLLIN})
                try:
                    request, client = server.get_request()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    rt.log(L_ERR, f"httpd: accept: {e}")
                    continue
                request.setblocking(True)
                if server.verify_request(request, client):
                    server.process_request(request, client)
                else:
                    server.shutdown_request(request)
    except Stopped:
        pass
    finally:
        server.server_close()


# ------------------------------------------------------------ MI

def mi_list_root_path(args: list[Any], rt: Any, module: LoadedModule | None) -> MIReply:
    reply = MIReply.ok()
    roots = httpd_api(module).roots if module is not None else []
    for r in roots:
        reply.add("http_root", r.root).attr("module", r.module)
    reply.json = [{"http_root": r.root, "module": r.module} for r in roots]
    return reply


exports = ModuleExports(
    name="httpd",
    params=[
        ParamExport("ip", str, ""),
        ParamExport("port", int, DEFAULT_PORT),
        ParamExport("buf_size", int, 0),
        ParamExport("post_buf_size", int, DEFAULT_POST_BUF_SIZE),
        ParamExport("tls_cert_file", str, None),
        ParamExport("tls_key_file", str, None),
        ParamExport("tls_ciphers", str, None),
    ],
    mi_cmds=[MICmdExport("httpd_list_root_path", mi_list_root_path, no_input=True)],
    procs=[ProcExport("HTTPD", httpd_process, 1)],
    mod_init=_mod_init,
    destroy=_destroy,
)
