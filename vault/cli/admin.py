"""`tvault init` and `tvault serve`: admin commands, run where the vault lives (`--vault`)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Annotated

import typer

from vault.cli.common import (
    DEV_PASSPHRASE,
    USAGE,
    VaultOption,
    fail,
    passphrase,
    settings_for,
    vault_failures,
)


def init(
    vault_dir: VaultOption = None,
    admin: Annotated[str, typer.Option("--admin", help="Name of the first custodian.")] = "admin",
    dev: Annotated[
        bool, typer.Option("--dev", help="Dev only: use a well-known passphrase.")
    ] = False,
    allow_weak: Annotated[
        bool,
        typer.Option(
            "--allow-weak-passphrase",
            help="Accept a passphrase weaker than the rule (docs/keys.md); not for real vaults.",
        ),
    ] = False,
) -> None:
    """Create a vault (passphrase from TVAULT_PASSPHRASE or a prompt) and a first custodian.

    The passphrase must meet the rule of docs/keys.md (length, and zxcvbn's estimate of the
    guesses it resists) unless `--allow-weak-passphrase`; a weak one is refused (exit 2) and
    nothing is created.
    """
    from vault import passphrases
    from vault.errors import VaultError
    from vault.provision import create_vault

    settings = settings_for(vault_dir)
    secret = passphrase(settings, confirm=True, dev=dev)
    if not dev and not allow_weak:
        why = passphrases.weakness(secret, (admin, settings.home.name, "tvault", "vault"))
        if why is not None:
            fail(
                f"the passphrase is too weak: {why}. It must be {passphrases.RULE}; "
                "--allow-weak-passphrase accepts it anyway (not for real testimonies)",
                USAGE,
            )
    try:
        vault = create_vault(settings, secret, admin)
    except VaultError as exc:
        fail(exc.detail)
    vault.close()
    home = settings.home
    typer.echo(f"Created a vault in {home} with the custodian {admin!r}.")
    typer.echo(f"Start it:      tvault serve --vault {home}")
    typer.echo(f"Get a token:   export TVAULT_TOKEN=$(tvault token {admin} --vault {home})")
    typer.echo(
        f"Now make recovery shares:  tvault keys split --shares 5 --threshold 3 --vault {home}\n"
        "  The passphrase alone opens the keyring. If it is forgotten, or the person who holds\n"
        "  it cannot act, every testimony in this vault is lost for good. Give each share to a\n"
        "  different trustee: any 3 of them together can recover the keyring (docs/keys.md)."
    )


def serve(
    vault_dir: VaultOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="Dev only: allow the well-known dev passphrase.")
    ] = False,
) -> None:
    """Run the API (and, embedded, the background services) on HOST:PORT."""
    import uvicorn

    from vault import allocator
    from vault.compose import serving

    allocator.tune()  # before the first upload buffer (vault/allocator.py)
    settings = settings_for(vault_dir)
    secret = passphrase(settings, confirm=False, dev=dev)
    if secret == DEV_PASSPHRASE and not dev:
        fail("the vault uses the example dev passphrase; refusing to serve without --dev", USAGE)
    # The port first: on a busy one, nothing has started yet (DESIGN.md exit codes: 1).
    listener = _listen(host, port)
    try:
        with vault_failures(settings.keyring_path):
            served = serving(settings, secret)
    except BaseException:
        listener.close()
        raise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        # uvicorn's access log is off: it would print query strings (vault.app logs instead).
        # httptools (through `served.http`, vault.api.protocol) and uvloop are named, not left
        # to "auto": a missing one must fail loudly rather than fall back to h11 (a third of the
        # upload throughput, bench/RESULTS.md). X-Forwarded-For is believed only from the
        # configured proxies: uvicorn's default trusts loopback, and a client there could then
        # choose the address the refused-token limiter counts against.
        config = uvicorn.Config(
            served.app,
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            http=served.http,
            loop="uvloop",
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=list(settings.trusted_proxies),
        )
        server = uvicorn.Server(config)
        logging.getLogger(__name__).info("serving on http://%s:%d", host, port)
        try:
            server.run(sockets=[listener])
        except SystemExit:
            # uvicorn exits 3 when the app's startup fails; the exit codes here are 0, 1, 2.
            pass
        except KeyboardInterrupt:
            # uvicorn re-raises the Ctrl-C it handled once it has shut down: a normal stop.
            pass
        if not server.started:
            fail("the API did not start (see the log above)")
    finally:
        listener.close()
        served.vault.close()


def _listen(host: str, port: int) -> socket.socket:
    """Return a socket bound to `host`:`port` and listening. Exits 1 with one line if it is
    taken or not an address of this machine."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}")
    listener.set_inheritable(True)
    return listener
