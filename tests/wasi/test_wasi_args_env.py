"""args_sizes_get, args_get, environ_sizes_get, environ_get (program: args_env.c)."""

from __future__ import annotations

import pytest

ARGS = ("one", "two words", "", "ünï", "--flag=x")


@pytest.fixture(scope="module")
def out(program_run):
    return program_run("args_env", *ARGS)


def test_args_and_env_program_runs_every_check_to_exit_0(out):
    assert out.run.code == 0, out.run.describe()


def test_args_sizes_match_what_main_receives(out):
    out.expect(
        "args_sizes_get -> 0 argc=6",
        "args_sizes_get argc matches main: yes",
        "args_sizes_get buf size matches: yes",
    )


def test_args_arrive_byte_exact_inside_their_buffer(out):
    out.expect(
        "args_get -> 0",
        "args_get pointers into buffer and equal to main argv: yes",
        "args_get wrote nothing past the buffer: yes",
        "args_get buffer NUL-terminated: yes",
        "argc=6",
        "argv[0] nonempty: yes",
        "argv[1]=[one] len=3",
        "argv[2]=[two words] len=9",
        "argv[3]=[] len=0",
        "argv[4]=[ünï] len=5",  # UTF-8 bytes, passed through untouched
        "argv[5]=[--flag=x] len=8",
    )


def test_environ_sizes_count_only_the_granted_variables(out):
    # 3 variables: "FOG_TEST_GREETING=hi there\0" (27) + "FOG_TEST_EQ=a=b=c\0" (18)
    # + "FOG_TEST_EMPTY=\0" (16) = 61 bytes; nothing inherited from the host.
    out.expect("environ_sizes_get -> 0 envc=3 size=61")


def test_guest_sees_only_the_granted_environment(out):
    out.expect(
        "environ_get -> 0",
        "environ_get wrote nothing past the buffer: yes",
        "environ count matches libc: yes",
        "env FOG_TEST_EMPTY=",
        "env FOG_TEST_EQ=a=b=c",
        "env FOG_TEST_GREETING=hi there",
        "getenv FOG_TEST_GREETING=hi there",
        "getenv FOG_TEST_EQ=a=b=c",
        "getenv FOG_TEST_EMPTY=(empty)",
        "getenv FOG_TEST_MISSING=(null)",
    )
    assert not [ln for ln in out.lines if ln.startswith("env ") and "FOG_TEST" not in ln]


def test_empty_environment_and_no_args(runtime_name, tmp_path):
    from _support import run_program

    o = run_program(runtime_name, "args_env", [], tmp_path, env={})
    o.expect(
        "args_sizes_get -> 0 argc=1",
        "args_get -> 0",
        "environ_sizes_get -> 0 envc=0 size=0",
        "environ_get -> 0",
        "getenv FOG_TEST_GREETING=(null)",
    )
