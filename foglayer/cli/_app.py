"""The ``fog`` command: parse, call one function, print. Nothing worth testing alone lives here."""

from __future__ import annotations

import sys

import click

from foglayer import __version__
from foglayer.cli._exit import EXIT_USAGE, fail, report
from foglayer.errors import FogError


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    fail(message, code)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from foglayer.runtime import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except FogError as e:
        raise click.BadParameter(str(e)) from None


def _output_option(f):
    return click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]),
                        default="table", show_default=True,
                        help="table for people; json or yaml for tools (docs/cli-output.md).")(f)


def _show(doc, fmt: str, table) -> None:
    """Print ``doc`` as JSON/YAML, or the table ``table(doc)`` draws from it."""
    if fmt == "table":
        drawn = table(doc)
        for t in drawn if isinstance(drawn, list) else [drawn]:
            _print(t)
        return
    from foglayer.cli._output import emit

    emit(doc, fmt)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except FogError as e:
            report(e)
        except KeyboardInterrupt:
            _fail("interrupted", 130)


def main(args: list[str] | None = None) -> None:
    """Entry point: click's usage errors become one line, like every other error."""
    try:
        cli.main(args, prog_name="fog", standalone_mode=False)
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
# The version from the package itself: where foglayer runs from its sources without being
# installed (the arm64 root binds them in), there is no distribution metadata to read.
@click.version_option(version=__version__, package_name="foglayer")
def cli() -> None:
    """foglayer: one WebAssembly layer from the cloud to the edge to IoT."""


class _RunCommand(click.Command):
    """``fog run``: argparse parses its flags (cold start); click only completes them."""

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list:
        from click.shell_completion import CompletionItem

        from foglayer.cli._run import flags

        return [CompletionItem(f) for f in flags() if f.startswith(incomplete)]


@cli.command(cls=_RunCommand, add_help_option=False, context_settings={
    "ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("argv", nargs=-1, type=click.Path())  # a Path only to complete file names
def run(argv) -> None:
    """Run a WASI command MODULE to completion (see fog run --help)."""
    from foglayer.cli._run import main as run_main

    run_main(list(argv))


@cli.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, metavar="SECONDS", help="How long to wait for the snapshot.")
def checkpoint(pid, timeout) -> None:
    """Snapshot the checkpointable fog run PID (it goes on); print the snapshot's path."""
    from foglayer.snapshot import checkpoint_pid

    click.echo(checkpoint_pid(pid, timeout))


@cli.command()
@click.argument("snapshot", type=click.Path(dir_okay=False))
@click.option("--dir", "dirs", multiple=True, metavar="HOST:GUEST",
              help="Put the preopen GUEST on another host directory. Repeatable.")
@click.option("--force", is_flag=True, help="Resume even over open files that changed.")
@click.option("--files-to", type=click.Path(file_okay=False), metavar="DIR",
              help="Unpack the files of a --with-files snapshot under DIR.")
@click.option("--module", type=click.Path(dir_okay=False),
              help="The module (original or checkpointable), if the snapshot does not carry it.")
@click.option("--max-memory", callback=_size, metavar="SIZE", help="Cap linear memory (64MiB).")
@click.option("--checkpoint-to", type=click.Path(dir_okay=False), metavar="FILE",
              help="Where further snapshots go.")
@click.option("--checkpoint-every", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Write a snapshot periodically.")
@click.option("--stop-after-checkpoint", is_flag=True,
              help="Exit right after the next snapshot is written.")
@click.option("--with-files", is_flag=True,
              help="Pack the preopened directories into further snapshots.")
@click.option("--seal", is_flag=True,
              help="Seal further snapshots under a key the controller releases (a node).")
@click.option("--seal-local", is_flag=True,
              help="Seal further snapshots under this machine's local key (weaker).")
def restore(snapshot, dirs, force, files_to, module, max_memory, checkpoint_to,
            checkpoint_every, stop_after_checkpoint, with_files, seal, seal_local) -> None:
    """Resume the app in SNAPSHOT here; exit with its exit code. A sealed SNAPSHOT opens in
    memory only: on a node the controller releases its key to after attesting it
    (fog run --seal), or where its local key is (--seal-local); its further snapshots are
    sealed the same way."""
    from foglayer.cli._args import parse_remaps
    from foglayer.cli._run import sealer, unsealer
    from foglayer.runtime import Limits
    from foglayer.snapshot import CheckpointOptions
    from foglayer.snapshot import restore as restore_snapshot

    mapping = parse_remaps(dirs)
    options = CheckpointOptions(path=checkpoint_to, every=checkpoint_every,
                                stop_after=stop_after_checkpoint, with_files=with_files,
                                seal=sealer(seal, seal_local))
    sys.stdout.flush()
    outcome = restore_snapshot(snapshot, dirs=mapping, force=force, files_to=files_to,
                               module=module, limits=Limits(max_memory=max_memory),
                               options=options, unseal=unsealer(options))
    from foglayer.cli._run import finish_checkpointable

    finish_checkpointable(outcome, False)


@cli.command()
@click.argument("snapshot", type=click.Path(dir_okay=False))
@_output_option
def inspect(snapshot, fmt) -> None:
    """Show what SNAPSHOT holds: module, memory, globals, descriptors, format version."""
    if fmt == "table":
        from foglayer.snapshot import describe

        click.echo(describe(snapshot))
        return
    from foglayer.cli._output import emit
    from foglayer.cli._output import snapshot as snapshot_doc

    emit(snapshot_doc(snapshot), fmt)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell) -> None:
    """Print the completion script for SHELL; e.g. in ~/.bashrc: eval "$(fog completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # click ships all three
    click.echo(cls(cli, {}, "fog", "_FOG_COMPLETE").source())


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


@cli.group()
def bench() -> None:
    """Benchmarks: native vs fog run vs raw wasmtime, side by side in one run."""


def _bench_done(result) -> None:
    from foglayer.bench import show

    show(result)
    sys.exit(0 if result.ok else 1)


_ARCH_HELP = ("Run on this architecture: aarch64 on an x86-64 host runs in the arm64 root "
              "under qemu-aarch64 (built once; indicative ratios only)  [default: the host's]")


@bench.command("polybench")
@click.option("--dataset", default=None, metavar="NAME",
              help="MINI, SMALL, MEDIUM, LARGE or EXTRALARGE  [default: LARGE; emulated: SMALL]")
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Repetitions  [default: 5; emulated: 3]")
@click.option("--kernels", metavar="A,B,...", help="Only these kernels (default: all 30).")
@click.option("--arch", metavar="ARCH", help=_ARCH_HELP)
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Results directory (default: results/polybench-<timestamp>).")
def bench_polybench(dataset, runs, kernels, arch, out) -> None:
    """PolyBench/C 4.2.1: 30 kernels, Wasm checksums checked against native."""
    from foglayer.bench import polybench

    names = [k for k in kernels.split(",") if k.strip()] if kernels else None
    _bench_done(polybench(dataset, runs, names, arch=arch, out=out))


@bench.command("speedtest")
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="speedtest1's --size  [default: 100; emulated: 10]")
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Repetitions  [default: 5; emulated: 3]")
@click.option("--disk", is_flag=True, help="An on-disk database in a preopened dir (not in memory).")
@click.option("--both", is_flag=True, help="In memory and on disk, interleaved in one run.")
@click.option("--arch", metavar="ARCH", help=_ARCH_HELP)
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Results directory (default: results/speedtest-<timestamp>).")
def bench_speedtest(size, runs, disk, both, arch, out) -> None:
    """SQLite speedtest1: 32 tests, per-test check values compared with native."""
    from foglayer.bench import speedtest

    modes = ("memory", "disk") if both else ("disk",) if disk else ("memory",)
    _bench_done(speedtest(size, runs, modes, arch=arch, out=out))


@bench.command("runtime")
@click.option("--runs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Results directory (default: results/runtime-<timestamp>).")
def bench_runtime(runs, out) -> None:
    """WASI call costs, compute and cold start: native, fog run, raw wasmtime."""
    from foglayer.bench import runtime

    _bench_done(runtime(runs, out=out))


@bench.command("cluster")
@click.option("--apps", type=click.IntRange(min=2), default=None,
              help="Apps to deploy (deploy-to-running latency)  [default: 100; with --sites 1000]")
@click.option("--invokes", type=click.IntRange(min=1), default=1000, show_default=True,
              help="fog invoke calls to time.")
@click.option("--sim-nodes", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Simulated nodes for the scheduler alone.")
@click.option("--sim-apps", type=click.IntRange(min=1), default=100000, show_default=True,
              help="Simulated apps for the scheduler alone.")
@click.option("--sites", is_flag=True,
              help="At scale: sites (a 3-server hub, 2 leaf sites), invoke at the edge, failover "
                   "of a node, a hub server and the leader, partition heal, density, metrics "
                   "and web view overhead, beside the scheduler.")
@click.option("--density", type=click.IntRange(min=1), default=1000, show_default=True,
              help="With --sites: idle service instances on one node.")
def bench_cluster(apps, invokes, sim_nodes, sim_apps, sites, density) -> None:
    """The continuum: deploy-to-running, invoke vs bare NATS, failover, takeover, scheduler."""
    if sites:
        from foglayer.cluster.bench_sites import run as run_sites

        run_sites(apps or 1000, invokes, density, sim_nodes, sim_apps)
        return
    from foglayer.cluster.bench import run

    run(apps or 100, invokes, sim_nodes, sim_apps)


@bench.command("migrate")
@click.option("--state", type=click.IntRange(1, 1024), default=16, show_default=True,
              metavar="MIB", help="MiB of service state to move.")
@click.option("--runs", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Moves per mode.")
@click.option("--arch", is_flag=True, help="Also x86-64 -> aarch64 (the arm node, emulated).")
@click.option("--sizes", default="16,256,1024", show_default=True, metavar="MIB,...",
              help="Working sets of the live commands moved ('' for none).")
@click.option("--rate", type=click.FloatRange(0, 1000), default=10.0, show_default=True,
              metavar="MIB/S", help="How fast the commands rewrite their working set.")
@click.option("--service/--no-service", default=True, show_default=True,
              help="Also the service under load.")
def bench_migrate(state, runs, arch, sizes, rate, service) -> None:
    """Live moves of a service under load and of running commands: pre-copy vs
    stop-and-copy (downtime, rounds, bytes, latency)."""
    from foglayer.cluster.bench_migrate import parse_sizes, run

    try:
        chosen = parse_sizes(sizes)
    except ValueError as e:
        raise click.BadParameter(str(e).removeprefix("--sizes: "), param_hint="--sizes") from None
    run(state, runs, arch, chosen, rate, service)


@bench.command("snapshot", context_settings={"ignore_unknown_options": True,
                                             "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench_snapshot(args) -> None:
    """Checkpoints: the cost of being checkpointable, pause/restore latency, snapshot size
    (options: fog bench snapshot --help)."""
    from foglayer.snapshot.bench import main

    main(list(args))


@bench.command("attest")
@click.option("--runs", type=click.IntRange(min=2), default=50, show_default=True)
@click.option("--deploys", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also deploy-to-running with and without attestation, N apps each, and "
                   "the sealed-snapshot data key over the bus, on a continuum of sim nodes.")
def bench_attest(runs, deploys) -> None:
    """Attestation round trip per backend (sim, tpm on swtpm, tsm stand-in), secret release;
    with --deploys, deploy-to-running with and without attestation."""
    from foglayer.trust.bench import Figure, attest_bench, render

    figures = attest_bench(runs)
    if deploys:
        from foglayer.cluster.bench import attested_deploys

        figures += [Figure(w, n, p50, p99, "a continuum of sim nodes, dev policy")
                    for w, n, p50, p99 in attested_deploys(deploys)]
    _print(render(figures))


# -- the continuum (foglayer.cluster) ----------------------------------------------------------


def _conn_options(f):
    f = click.option("--tls-ca", type=click.Path(dir_okay=False), metavar="FILE",
                     help="CA certificate to verify a tls:// server.")(f)
    f = click.option("--creds", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Credentials file (default: $FOG_CREDS, or the one `fog up` wrote).")(f)
    f = click.option("--server", metavar="URL", help="NATS server, e.g. nats://host:4222 or tls://host:4222.")(f)
    return f


def _creds(server, creds, tls_ca):
    from foglayer.cluster import Creds, resolve

    c = resolve(server, creds)
    if tls_ca:
        c = Creds(**{**c.__dict__, "ca": tls_ca})
    return c


def _connect(server, creds, tls_ca):
    """The synchronous cluster client, on credentials resolved once."""
    from foglayer.cluster import SyncClient

    return SyncClient(_creds(server, creds, tls_ca), "fog-cli")


def _print(renderable) -> None:
    from rich.console import Console

    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(soft_wrap=False, width=200)
    console.print(renderable)


@cli.command()
@click.option("--nodes", metavar="PROFILES",
              help="Node profiles: cloud,edge,iot (the default) or counts like cloud=2,iot=3.")
@click.option("--port", type=click.IntRange(1, 65535), help="NATS port (default: 4222 if free).")
@click.option("--dir", "root", type=click.Path(file_okay=False),
              help="State directory (default: <user data dir>/continuum).")
@click.option("--view/--no-view", default=None,
              help="Live status view (default: on a terminal; otherwise event lines).")
@click.option("--sites", metavar="SITES",
              help="Sites instead of one server: HUB[:SERVERS],LEAF[@MS],... e.g. "
                   "cloud:3,edge-a,edge-b@25 (a NATS cluster and leaf-node sites; a node each).")
@click.option("--ui-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="The web view's port on 127.0.0.1 (0: a free one).")
@click.option("--no-ui", is_flag=True, help="No web view.")
def up(nodes, port, root, view, sites, ui_port, no_ui) -> None:
    """Run a whole continuum here: a NATS server, a controller and node agents, and a web view
    (Ctrl-C stops; running it again resumes the same state)."""
    from functools import partial

    from foglayer.cli._render import up_lines, up_live
    from foglayer.cluster import Creds
    from foglayer.cluster import up as do_up

    def web(c):
        from foglayer.web import WebView

        v = WebView(Creds.load(c.creds("admin")), port=ui_port).start()
        click.echo(f"fog up: web view at {v.url} (read-only; the token is required)")
        return v.stop

    live = view if view is not None else sys.stdout.isatty()
    watch = up_live if live else partial(up_lines, echo=click.echo)
    do_up(nodes, root=root, port=port, watch=watch, echo=click.echo, sites=sites,
          on_start=None if no_ui else web)


@cli.command()
@_conn_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the view is read-only, but keep it local).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port (0: a free one).")
@click.option("--token", metavar="TOKEN", help="The token to require (default: a random one).")
def ui(server, creds, tls_ca, host, port, token) -> None:
    """Serve the live web view of a continuum (read-only, behind a token) until Ctrl-C."""
    from foglayer.web import WebView

    v = WebView(_creds(server, creds, tls_ca), host=host, port=port, token=token)
    click.echo(f"fog ui: {v.url}")
    v.serve()


@cli.command()
@_conn_options
@click.option("--name", required=True, help="This node's name (its credentials must match).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label. Repeatable.")
@click.option("--max-memory", callback=_size, metavar="SIZE", help="Memory for apps (default: all).")
@click.option("--fuel-rate", type=click.FloatRange(min=1), metavar="N",
              help="Throttle apps to N Wasm instructions per second.")
@click.option("--latency", "latency", multiple=True, metavar="SITE=MS",
              help="Round-trip time to a site, in milliseconds. Repeatable.")
@click.option("--cpus", type=click.IntRange(min=1), help="CPUs to advertise (default: all).")
@click.option("--no-simd", is_flag=True, help="Compile without Wasm SIMD (and say so).")
@click.option("--heartbeat", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              metavar="SECONDS", help="Heartbeat interval.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where app directories live.")
@click.option("--probe-site", "probe_sites", multiple=True, metavar="SITE",
              help="Measure the round trip to SITE (its echo) for the scheduler. Repeatable.")
@click.option("--tee", type=click.Choice(["sim", "tpm", "tsm"]),
              help="Evidence backend for attestation (sim proves nothing and says so).")
@click.option("--tpm-tcti", metavar="TCTI",
              help="tpm: TPM2TOOLS_TCTI (default: $TPM2TOOLS_TCTI, /dev/tpmrm0, else a private "
                   "swtpm).")
@click.option("--tsm-root", metavar="DIR",
              help="tsm: the configfs-tsm report dir, or 'standin' (no TEE hardware: a stand-in).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve Prometheus metrics on 127.0.0.1:PORT (0: a free port).")
def node(server, creds, tls_ca, name, labels, max_memory, fuel_rate, latency, cpus, no_simd,
         heartbeat, data_dir, probe_sites, tee, tpm_tcti, tsm_root, metrics_port) -> None:
    """Run a node agent: register, send heartbeats, run what the controller places here."""
    from pathlib import Path

    from foglayer.cli._args import parse_pairs
    from foglayer.cluster import NodeConfig, check_name, run_node

    lat = parse_pairs(latency, "--latency", float, "SITE=MILLISECONDS")
    c = _creds(server, creds, tls_ca)
    run_node(NodeConfig(name=name, creds=c, labels=parse_pairs(labels, "--label"),
                        max_memory=max_memory, fuel_rate=fuel_rate, heartbeat=heartbeat,
                        data_dir=Path(data_dir) if data_dir else None, latency=lat,
                        simd=not no_simd, cpus=cpus,
                        probe_sites=[check_name(s, "site") for s in probe_sites],
                        tee=tee, tpm_tcti=tpm_tcti, tsm_root=tsm_root,
                        controller_key=_controller_key(c), metrics_port=metrics_port))


def _controller_key(c) -> bytes | None:
    import base64
    import binascii

    if not c.controller_key:
        return None
    try:
        return base64.b64decode(c.controller_key, validate=True)
    except binascii.Error:
        _fail("credentials: controller_key is not base64")


@cli.command()
@_conn_options
@click.option("--name", help="This controller's name (default: random).")
@click.option("--node-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              metavar="SECONDS", help="A node silent this long is lost.")
@click.option("--lease-ttl", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              metavar="SECONDS", help="A leader silent this long is replaced.")
@click.option("--move-settle", type=click.FloatRange(min=0), default=60.0, show_default=True,
              metavar="SECONDS", help="An app the controller moved stays at least this long "
                                      "before it moves again for latency.")
@click.option("--trust-dir", type=click.Path(file_okay=False),
              help="The controller's signing and master keys (default: <user data dir>/"
                   "controller-trust); every controller of a cluster needs the same.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve Prometheus metrics on 127.0.0.1:PORT (0: a free port).")
def controller(server, creds, tls_ca, name, node_timeout, lease_ttl, move_settle, trust_dir,
               metrics_port) -> None:
    """Run a controller (several may run: a KV lease elects the leader)."""
    from pathlib import Path

    from foglayer.cluster import ControllerConfig, run_controller

    run_controller(ControllerConfig(creds=_creds(server, creds, tls_ca), name=name,
                                    node_timeout=node_timeout, lease_ttl=lease_ttl,
                                    settle=move_settle, trust_dir=Path(trust_dir) if trust_dir else None,
                                    metrics_port=metrics_port))


@cli.command()
@_conn_options
@click.argument("target", metavar="NODE|APP")
@_output_option
def attest(server, creds, tls_ca, target, fmt) -> None:
    """Print the latest attestation result of NODE (or of the nodes running APP), and why."""
    import time

    from foglayer.cli._output import attestation_list
    from foglayer.cli._render import attest_table
    from foglayer.cluster import SyncClient

    c = _creds(server, creds, tls_ca)
    key = _controller_key(c)
    with SyncClient(c, "fog-cli") as client:
        view = attestation_list(client.attestations(target, key), time.time())
    _show(view, fmt, attest_table)


@cli.group()
def policy() -> None:
    """The attestation policy (backends, reference values, max age, whether sim is accepted)."""


@policy.command("show")
@_conn_options
def policy_show(server, creds, tls_ca) -> None:
    """Print the policy in force (YAML)."""
    with _connect(server, creds, tls_ca) as c:
        text = c.policy()
    click.echo(text.rstrip("\n"))


@policy.command("set")
@_conn_options
@click.argument("file", type=click.Path(dir_okay=False))
def policy_set(server, creds, tls_ca, file) -> None:
    """Replace the policy with FILE (checked first)."""
    from foglayer.trust import load_policy

    pol = load_policy(file)
    with _connect(server, creds, tls_ca) as c:
        c.set_policy(pol.to_yaml(), file)
    click.echo(f"policy set from {file} ({pol.id[:19]}); sim "
               f"{'ACCEPTED (proves nothing)' if pol.accepts_sim() else 'refused'}")


@cli.group()
def secret() -> None:
    """Secrets, sealed to the controller and released only to attested nodes."""


@secret.command("put")
@_conn_options
@click.argument("name")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False, exists=True),
              help="The secret's bytes from this file.")
@click.option("--value", help="The secret as text.")
def secret_put(server, creds, tls_ca, name, from_file, value) -> None:
    """Store secret NAME (--from-file F or --value V), sealed; apps name it in `secrets:`."""
    from pathlib import Path

    if (from_file is None) == (value is None):
        _fail("secret put: give exactly one of --from-file FILE and --value VALUE")
    data = Path(from_file).read_bytes() if from_file else value.encode()
    with _connect(server, creds, tls_ca) as c:
        c.put_secret(name, data)
    click.echo(f"secret {name}: stored sealed ({len(data)} bytes); released only after an "
               "affirming attestation")


@cli.command()
@_conn_options
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              metavar="SECONDS", help="Wait this long for the app to be placed (0: do not wait).")
@click.option("--encrypt", is_flag=True, help="Store the module encrypted; only a node with "
              "an affirming attestation gets its key, and decrypts it in memory only.")
def deploy(server, creds, tls_ca, manifest, wait, encrypt) -> None:
    """Deploy the app MANIFEST (YAML): upload its module, then the controller places it."""
    from foglayer.cli._render import deployed, placed
    from foglayer.cluster import load_manifest

    m = load_manifest(manifest)  # parsed once; a bad manifest fails before any connection
    spec = m.spec
    with _connect(server, creds, tls_ca) as c:
        record = c.deploy(m, encrypt=encrypt)
        click.echo(deployed(spec, record))
        if wait and spec.replicas:
            settled = c.wait(spec.name, record["generation"], spec.replicas, wait)
            for p in settled:
                click.echo(placed(spec, p))
            stuck = [p for p in settled if p["state"] in ("pending", "failed")]
            if stuck:  # deployed, but it does not run: a script must see it (as kubectl rollout)
                _fail(f"{spec.name}: {len(stuck)} of {spec.replicas} replicas not running "
                      "(why above; `fog explain " + spec.name + "`)", 1)


@cli.command()
@_conn_options
@_output_option
def ps(server, creds, tls_ca, fmt) -> None:
    """List the apps, their replicas, where they run and their state."""
    from foglayer.cli._output import app_list
    from foglayer.cli._render import ps_table

    with _connect(server, creds, tls_ca) as c:
        view = app_list(c.apps(), c.placements())
    _show(view, fmt, ps_table)


@cli.command()
@_conn_options
@_output_option
@click.option("--tenant", metavar="TENANT", help="Only this tenant.")
@click.option("--since", metavar="DURATION", help="Only what was used in the last DURATION "
              "(90s, 15m, 2h, 7d).")
def usage(server, creds, tls_ca, fmt, tenant, since) -> None:
    """What each tenant and app consumed: instructions, memory-seconds, invocations, WASI
    calls, volume bytes (metered by the nodes, kept in JetStream)."""
    from foglayer.cli._output import usage_report
    from foglayer.cli._render import usage_table
    from foglayer.cluster import check_name, parse_since

    if tenant is not None:
        check_name(tenant, "tenant")
    when = parse_since(since) if since else None
    with _connect(server, creds, tls_ca) as c:
        doc = usage_report(c.usage(tenant, when))
    _show(doc, fmt, usage_table)


@cli.command()
@_conn_options
@click.argument("node")
@click.option("--revoke", is_flag=True, help="Withdraw the trust instead.")
def trust(server, creds, tls_ca, node, revoke) -> None:
    """Mark NODE trusted (the operator's note, shown by fog nodes -o json). It lets nothing
    in: secrets and TEE apps go only to nodes with an affirming attestation (fog attest)."""
    with _connect(server, creds, tls_ca) as c:
        c.trust(node, not revoke)
    if revoke:
        click.echo(f"{node}: no longer marked trusted")
    else:
        click.echo(f"{node}: marked trusted (a note: secrets and TEE apps still need an "
                   f"affirming attestation, see `fog attest {node}`)")


@cli.command()
@_conn_options
@_output_option
def nodes(server, creds, tls_ca, fmt) -> None:
    """List the nodes, their capabilities and what they hold."""
    from foglayer.cli._output import node_list
    from foglayer.cli._render import nodes_table
    from foglayer.cluster import SyncClient

    cr = _creds(server, creds, tls_ca)
    with SyncClient(cr, "fog-cli") as c:
        view = node_list(c.nodes(_controller_key(cr)), c.placements(), c.apps())
    _show(view, fmt, nodes_table)


@cli.command()
@_conn_options
@click.argument("app")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output (Ctrl-C stops).")
def logs(server, creds, tls_ca, app, follow) -> None:
    """Print the stdout and stderr of APP (from every node that ran it)."""
    from foglayer.cli._render import write_chunk

    with _connect(server, creds, tls_ca) as c:
        c.logs(app, write_chunk, follow=follow)


@cli.command()
@_conn_options
@click.option("--last", type=click.IntRange(1, 1000), default=20, show_default=True,
              metavar="N", help="How many of the latest events.")
@_output_option
def events(server, creds, tls_ca, last, fmt) -> None:
    """Print the controller's latest events: placements, moves (and why one failed), nodes
    joining or lost, attestations."""
    from foglayer.cli._output import event_list
    from foglayer.cli._render import event_list_table

    with _connect(server, creds, tls_ca) as c:
        view = event_list(c.events(last))
    _show(view, fmt, event_list_table)


@cli.command()
@_conn_options
@click.argument("app")
def stop(server, creds, tls_ca, app) -> None:
    """Stop APP: remove its desired state; the controller stops its instances."""
    with _connect(server, creds, tls_ca) as c:
        c.stop(app)
    click.echo(f"{app}: stopping (the desired state is gone; the controller stops its instances)")


@cli.command()
@_conn_options
@click.argument("app")
@_output_option
def explain(server, creds, tls_ca, app, fmt) -> None:
    """Show the scheduler's table for APP's last placement: filters, scores, winner."""
    from foglayer.cli._output import explanation
    from foglayer.cli._render import explain_table

    with _connect(server, creds, tls_ca) as c:
        view = explanation(c.decision(app))
    _show(view, fmt, explain_table)


@cli.command()
@_conn_options
@click.argument("node_name", metavar="NODE")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600.0,
              show_default=True, metavar="SECONDS", help="How long to wait for it to empty.")
def drain(server, creds, tls_ca, node_name, timeout) -> None:
    """Mark NODE unschedulable and move everything off it: services and commands with
    mobility: live live, the others by a restart elsewhere (fog uncordon NODE undoes it)."""
    with _connect(server, creds, tls_ca) as c:
        c.drain(node_name, lambda left: click.echo(
            f"{node_name}: {len(left)} left{': ' + ', '.join(left) if left else ''}"), timeout,
            lambda why: click.echo(f"  {why}"))
    click.echo(f"{node_name}: drained and cordoned")


@cli.command()
@_conn_options
@click.argument("node_name", metavar="NODE")
def uncordon(server, creds, tls_ca, node_name) -> None:
    """Let NODE take new work again (after fog drain)."""
    with _connect(server, creds, tls_ca) as c:
        c.cordon(node_name, False)
    click.echo(f"{node_name}: schedulable")


@cli.command()
@_conn_options
@click.argument("target", metavar="APP[.REPLICA]")
@click.option("--to", "to", required=True, metavar="NODE", help="The node to move it to.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600.0,
              show_default=True, metavar="SECONDS", help="How long to wait for the move.")
@click.option("--stop-and-copy", is_flag=True,
              help="No pre-copy rounds: freeze first, then copy everything.")
def migrate(server, creds, tls_ca, target, to, timeout, stop_and_copy) -> None:
    """Move a running service instance, or a command with mobility: live, to NODE, live: its
    memory (pre-copied in rounds while it runs), state, open files and volumes go with it;
    calls made meanwhile are held and served after the switch; a command's output goes on in
    the same log stream and its exit code is the app's."""
    from foglayer.cli._render import move_progress, move_summary

    with _connect(server, creds, tls_ca) as c, move_progress() as on_progress:
        summary = c.migrate(target, to, on_progress, timeout, stop_and_copy)
    click.echo(move_summary(summary))


@cli.command()
@_conn_options
@click.argument("app")
@click.argument("function")
@click.argument("payload", required=False, default="")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, metavar="SECONDS", help="How long to wait for the answer.")
@click.option("--raw", is_flag=True, help="Print the result as it is (no newline added).")
def invoke(server, creds, tls_ca, app, function, payload, timeout, raw) -> None:
    """Call FUNCTION of the service APP with PAYLOAD ('-' reads stdin); print the result."""
    data = sys.stdin.buffer.read() if payload == "-" else payload.encode()
    with _connect(server, creds, tls_ca) as c:
        out = c.invoke(app, function, data, timeout)
    sys.stdout.buffer.write(out if raw or out.endswith(b"\n") else out + b"\n")
    sys.stdout.flush()

