"""The ``fog`` command: parse, call one function, print. Nothing worth testing alone lives here."""

from __future__ import annotations

import os
import sys

import click

from foglayer.errors import FogError

EXIT_USAGE = 2  # a user's mistake: bad flag, missing file, bad module
EXIT_TRAP = 134  # as wasmtime: 128 + SIGABRT
EXIT_LIMIT = 137  # a limit (memory, fuel, time) stopped the app


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"fog: error: {message}", err=True)
    sys.exit(code)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from foglayer.runtime import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except FogError as e:
        raise click.BadParameter(str(e)) from None


def _preopens(specs: tuple[str, ...]) -> list:
    from foglayer.wasi import Preopen

    out = []
    for spec in specs:
        parts = spec.split(":")
        readonly = len(parts) > 1 and parts[-1] == "ro"
        if readonly:
            parts = parts[:-1]
        if not parts[0] or len(parts) > 2:
            raise click.BadParameter(f"{spec!r}: expected HOST[:GUEST][:ro]", param_hint="--dir")
        host = parts[0]
        guest = parts[1] if len(parts) == 2 and parts[1] else host
        if not os.path.isdir(host):
            what = "not a directory" if os.path.exists(host) else "no such directory"
            raise click.BadParameter(f"{spec!r}: {host}: {what}", param_hint="--dir")
        out.append(Preopen(host=host, guest=guest, readonly=readonly))
    return out


def _env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--env")
        env[key] = value
    return env


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except FogError as e:
            from foglayer.runtime import LimitExceeded, Trapped

            if isinstance(e, Trapped):
                click.echo(f"fog: {'limit' if isinstance(e, LimitExceeded) else 'trap'}: {e}", err=True)
                if e.backtrace:
                    click.echo("wasm backtrace:", err=True)
                    for i, frame in enumerate(e.backtrace):
                        click.echo(f"  {i}: {frame}", err=True)
                sys.exit(EXIT_LIMIT if isinstance(e, LimitExceeded) else EXIT_TRAP)
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted", 130)


def main() -> None:
    """Entry point: click's usage errors become one line, like every other error."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(EXIT_USAGE)
    except click.UsageError as e:
        where = f"{e.ctx.command_path}: " if e.ctx else ""
        _fail(f"{where}{e.format_message()}")
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as e:
        _fail(e.format_message())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="foglayer")
def cli() -> None:
    """foglayer: one WebAssembly layer from the cloud to the edge to IoT."""


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--dir", "dirs", multiple=True, metavar="HOST[:GUEST][:ro]",
              help="Preopen a host directory (read-only with :ro). Repeatable.")
@click.option("--env", "envs", multiple=True, metavar="KEY=VALUE", help="Set a guest variable.")
@click.option("--max-memory", callback=_size, metavar="SIZE", help="Cap linear memory (64MiB).")
@click.option("--fuel", type=click.IntRange(min=1), help="Cap executed instructions.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Cap wall-clock time.")
@click.option("--stats", is_flag=True, help="Print fuel, peak memory, wall time, WASI calls.")
@click.argument("module", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(dirs, envs, max_memory, fuel, timeout, stats, module, args) -> None:
    """Run a WASI command MODULE to completion; exit with its exit code."""
    from foglayer.runtime import Limits
    from foglayer.runtime import run as run_module

    preopens, env = _preopens(dirs), _env(envs)
    sys.stdout.flush()
    result = run_module(module, args, env=env, preopens=preopens, stats=stats,
                        limits=Limits(max_memory=max_memory, fuel=fuel, timeout=timeout))
    if stats:
        from foglayer._report import print_stats

        print_stats(result.stats)
    sys.exit(result.exit_code & 0xFF if result.exit_code >= 0 else 1)


@cli.command()
@click.argument("module", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Also write the compiled artifact here.")
@click.option("--all-variants", is_flag=True,
              help="Also compile the metered and interruptible variants --stats/--fuel/--timeout use.")
def compile(module, output, all_variants) -> None:  # noqa: A001 - the command's name
    """Compile MODULE ahead of time into the cache, as wamrc does for WAMR."""
    from foglayer.runtime import compile_ahead

    for line in compile_ahead(module, output=output, all_variants=all_variants):
        click.echo(line)


if __name__ == "__main__":
    main()
