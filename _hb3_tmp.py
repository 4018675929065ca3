import asyncio, time, socket, threading
import uvicorn
from litestar import Litestar, get

@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"hello": "world"}

def measure(port):
    c = socket.create_connection(("127.0.0.1", port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat=[]
    for _ in range(60):
        t=time.perf_counter()
        c.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        buf=b""
        while b'"world"}' not in buf:
            buf+=c.recv(4096)
        lat.append(time.perf_counter()-t)
    lat.sort(); return round(lat[30]*1e3,2)

for loop in ("asyncio", "uvloop"):
    for http in ("h11", "httptools"):
        sock = socket.socket(); sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        srv = uvicorn.Server(uvicorn.Config(Litestar([hello]), loop=loop, http=http, log_level="error", access_log=False))
        t = threading.Thread(target=lambda: srv.run(sockets=[sock]), daemon=True); t.start()
        while not srv.started: time.sleep(0.01)
        print(loop, http, measure(port))
        srv.should_exit = True; t.join()
