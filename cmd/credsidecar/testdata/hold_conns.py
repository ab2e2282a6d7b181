# Holds many idle keep-alive connections to the sidecar, as the attack of
# the hostile-users issue did: each sends one request (answered 403: this
# caller matches no client) and is then kept open, idle. Run as an
# unprivileged uid. argv: host port count source-address...
import resource, socket, sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sources = sys.argv[4:]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
req = b"GET /creds HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
held, failed = [], 0
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((sources[i % len(sources)], 0))
        s.connect((host, port))
        s.sendall(req)
        held.append(s)
    except OSError:
        failed += 1
        s.close()
print("ready", len(held), failed, flush=True)
sys.stdin.read()  # hold until the test closes our stdin
