"""What the Python benches share: a free port for a redis-server of their own, and Redis's CPU."""
import socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu(r):
    """Seconds of CPU the server has used (INFO cpu: user + sys, whole process)."""
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]
