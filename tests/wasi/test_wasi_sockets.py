"""sock_accept, sock_recv, sock_send, sock_shutdown with no socket granted: on a file, the
preopen dir and stdout each answers ENOTSOCK (57); on a closed fd EBADF (8)
(program: sockets.c)."""

from __future__ import annotations

import pytest

CALLS = ("sock_accept", "sock_accept {} nonblock", "sock_recv", "sock_recv {} peek",
         "sock_send", "sock_shutdown {} rd", "sock_shutdown {} rd|wr")


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("sockets")


def _lines(target: str, errno: int) -> list[str]:
    return [(c.format(target) if "{}" in c else f"{c} {target}") + f" -> {errno}" for c in CALLS]


def test_socket_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


@pytest.mark.parametrize("target", ["file", "dir", "stdout"])
def test_sock_calls_on_non_sockets_are_enotsock(out, target):
    out.expect(*_lines(target, 57))


def test_sock_calls_on_closed_fd_are_ebadf(out):
    out.expect(*_lines("closed", 8))


def test_libc_socket_wrappers(out):
    out.expect(
        "accept(file) -> -1 errno=57",
        "recv(file) -> -1 errno=57",
        "send(file) -> -1 errno=57",
        "shutdown(file, SHUT_RDWR) -> -1 errno=57",
        "recv(closed) -> -1 errno=8",
        "file still readable -> 11 [hello world]",
    )
    assert (out.world.sandbox / "hello.txt").read_bytes() == b"hello world"
