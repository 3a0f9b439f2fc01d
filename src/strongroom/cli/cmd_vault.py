"""``strongroom vault``: run a Backup Key Vault, manage its accounts, see a repository's record."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from ..errors import UsageError
from .context import AppContext
from .options import global_options, pass_app
from .vault_support import access, has_password, vault_options

ENV_DB = "STRONGROOM_VAULT_DB"
ENV_SECRETS = "STRONGROOM_VAULT_SECRETS"
ENV_PASSPHRASE = "STRONGROOM_VAULT_PASSPHRASE"
ENV_PIN = "STRONGROOM_VAULT_PIN"

EPILOG = """\b
Examples:
  export STRONGROOM_VAULT_PASSPHRASE=...        # software keystore (development)
  strongroom vault serve --db vault.db --secrets vault-secrets.json --port 8443
  strongroom vault account create alice --db vault.db
  STRONGROOM_VAULT_PIN=1234 strongroom vault serve --keystore pkcs11 --token-label strongroom
  strongroom vault status --repo /mnt/backup --vault-token-file ~/.vault-token"""


@click.group("vault", epilog=EPILOG)
def command() -> None:
    """The Backup Key Vault: serve it, manage accounts, show a record's status."""


F = TypeVar("F", bound=Callable[..., Any])


def _db_option(f: F) -> F:
    return click.option("--db", "database", envvar=ENV_DB, default="vault.db", show_default=True,
                        metavar="PATH|postgresql://...",
                        help=f"Record store: a SQLite file or a PostgreSQL URL [env {ENV_DB}].")(f)


@command.command("serve")
@_db_option
@click.option("--secrets", envvar=ENV_SECRETS, default="vault-secrets.json", show_default=True,
              help=f"Sealed secrets file, created on first start [env {ENV_SECRETS}].")
@click.option("--keystore", type=click.Choice(["software", "pkcs11"]), default="software",
              show_default=True, help="What seals the secrets: a passphrase or a PKCS#11 token.")
@click.option("--pkcs11-module", default="/usr/lib/softhsm/libsofthsm2.so", show_default=True)
@click.option("--token-label", default="strongroom", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--attempt-limit", default=10, show_default=True, type=int,
              help="Wrong guesses allowed before the record is destroyed.")
@click.option("--auth", "auth_mode", type=click.Choice(["tokens", "jwt"]), default="tokens",
              show_default=True, help="Standalone account tokens, or JWTs from the chat app.")
@click.option("--jwt-public-key", type=click.Path(dir_okay=False), help="PEM public key (jwt mode).")
@click.option("--jwt-jwks", type=click.Path(dir_okay=False), metavar="FILE",
              help="JWKS file of the auth service's public keys, chosen by the token's 'kid' and "
                   "reloaded when the file changes: rotate keys without a restart (jwt mode; "
                   "instead of --jwt-public-key).")
@click.option("--jwt-issuer", help="Required 'iss' (jwt mode).")
@click.option("--jwt-audience", help="Required 'aud' (jwt mode).")
# The default is vault.auth.DEFAULT_JWT_MAX_LIFETIME (a test keeps them equal), not
# imported: every CLI start would load the vault core.
@click.option("--jwt-max-lifetime", default=24 * 3600, show_default=True,
              type=click.IntRange(min=1), metavar="SECONDS",
              help="Refuse JWTs valid longer than this (exp - iat, or exp - now) (jwt mode).")
@click.option("--kdf-memory-kib", default=65536, show_default=True, type=int,
              help="Argon2id memory of a new software keystore.")
@click.option("--sign-legacy-rows", is_flag=True,
              help="Once, after upgrading: give records of an older vault version their "
                   "integrity MAC (until then they are refused).")
@click.option("--threads", type=click.IntRange(min=1), default=None, metavar="N",
              help="Requests served at once by the vault core (worker threads; default 40).")
@click.option("--db-connections", type=click.IntRange(min=1), default=None, metavar="N",
              help="PostgreSQL: connections this node holds at most, shared by its worker "
                   "threads (default: as many as --threads; a request that finds none free "
                   "within 10 s gets 503).  Keep nodes x N below the server's max_connections.")
def serve(database: str, secrets: str, keystore: str, pkcs11_module: str, token_label: str,
          host: str, port: int, attempt_limit: int, auth_mode: str, jwt_public_key: str | None,
          jwt_jwks: str | None, jwt_issuer: str | None, jwt_audience: str | None, jwt_max_lifetime: int,
          kdf_memory_kib: int, sign_legacy_rows: bool, threads: int | None,
          db_connections: int | None) -> None:
    """Run the vault over HTTP (uvicorn, one process)."""
    import uvicorn

    from ..vault.app import create_app
    from ..vault.server import VaultSettings, build_vault, open_auth

    settings = VaultSettings(
        database=database, secrets=secrets, keystore=keystore,
        passphrase=os.environ.get(ENV_PASSPHRASE), pkcs11_module=pkcs11_module,
        token_label=token_label, pin=os.environ.get(ENV_PIN), attempt_limit=attempt_limit,
        auth=auth_mode, jwt_public_key=jwt_public_key, jwt_jwks=jwt_jwks, jwt_issuer=jwt_issuer,
        jwt_audience=jwt_audience, jwt_max_lifetime=jwt_max_lifetime,
        sign_legacy_rows=sign_legacy_rows, db_connections=db_connections or threads,
        software_kdf={"memory_kib": kdf_memory_kib, "iterations": 3, "lanes": 1})
    vault = build_vault(settings)
    app = create_app(vault, open_auth(settings, vault.store), worker_threads=threads)
    key = base64.urlsafe_b64encode(vault.server_public_key).rstrip(b"=").decode()
    click.echo(f"strongroom vault on http://{host}:{port} (public key {key})", err=True)
    # No proxy headers: the vault trusts no X-Forwarded-* header (it uses no client address).
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, workers=1,
                proxy_headers=False)


ENV_NEW_PASSPHRASE = "STRONGROOM_VAULT_NEW_PASSPHRASE"
ENV_NEW_PIN = "STRONGROOM_VAULT_NEW_PIN"


@command.command("reseal")
@click.option("--secrets", envvar=ENV_SECRETS, default="vault-secrets.json", show_default=True,
              help=f"The sealed secrets file now in use (left unchanged) [env {ENV_SECRETS}].")
@click.option("--to", "dest", required=True, metavar="PATH",
              help="The new sealed secrets file (must not exist).")
@click.option("--keystore", type=click.Choice(["software", "pkcs11"]), default="software",
              show_default=True, help="The new root: a passphrase or a PKCS#11 token key.")
@click.option("--pkcs11-module", default="/usr/lib/softhsm/libsofthsm2.so", show_default=True)
@click.option("--token-label", default="strongroom", show_default=True, help="New root's token.")
@click.option("--key-label", default=None, help="New root's key label in the token (created if "
                                                "absent; default strongroom-vault-root).")
@click.option("--kdf-memory-kib", default=65536, show_default=True, type=int,
              help="Argon2id memory of a new software root.")
@click.option("--dry-run", is_flag=True, help="Open the current file, say what would be written.")
def reseal(secrets: str, dest: str, keystore: str, pkcs11_module: str, token_label: str,
           key_label: str | None, kdf_memory_kib: int, dry_run: bool) -> None:
    """Rotate the vault's root: seal the same secrets under a new root into a new file.

    \b
    The current root opens --secrets (its passphrase in STRONGROOM_VAULT_PASSPHRASE,
    or its token PIN in STRONGROOM_VAULT_PIN); the new root is a new passphrase in
    STRONGROOM_VAULT_NEW_PASSPHRASE, or a PKCS#11 key (PIN in STRONGROOM_VAULT_NEW_PIN,
    else the same PIN).  The secrets do not change, so clients notice nothing: move
    the vault nodes to the new file one at a time, then destroy the old file and root.
    """
    from ..vault.keystore import Pkcs11Keystore, keystore_params, reseal_secrets
    from ..vault.server import VaultSettings, open_keystore

    params = keystore_params(secrets)
    old = open_keystore(VaultSettings(
        database="", secrets=secrets, keystore=str(params.get("kind")),
        passphrase=os.environ.get(ENV_PASSPHRASE), pin=os.environ.get(ENV_PIN),
        pkcs11_module=str(params.get("module", "")), token_label=str(params.get("token_label", "")),
        key_label=str(params.get("key_label", "strongroom-vault-root"))))
    new: Any
    if keystore == "software":
        passphrase = os.environ.get(ENV_NEW_PASSPHRASE)
        if not passphrase:
            raise UsageError("the new software root needs a passphrase",
                             hint=f"set {ENV_NEW_PASSPHRASE}")
        from ..vault.keystore import SoftwareKeystore

        new = SoftwareKeystore(passphrase, salt=os.urandom(16), memory_kib=kdf_memory_kib,
                               iterations=3, lanes=1)
    else:
        pin = os.environ.get(ENV_NEW_PIN) or os.environ.get(ENV_PIN)
        if not pin:
            raise UsageError("the new PKCS#11 root needs the token PIN", hint=f"set {ENV_NEW_PIN}")
        label = key_label or "strongroom-vault-root"
        if params.get("kind") == "pkcs11" and label == params.get("key_label") \
                and token_label == params.get("token_label"):
            raise UsageError("the new root is the key that seals the current file",
                             hint="give --key-label a new label")
        if dry_run:
            new = None
        else:
            new = Pkcs11Keystore(pkcs11_module, token_label, pin, label, create=True)
    if dry_run:
        from ..vault.keystore import load_secrets

        load_secrets(secrets, old)  # the current root opens it
        click.echo(f"would write {dest}: the secrets of {secrets} sealed under a new {keystore} "
                   f"root; {secrets} stays as it is", err=True)
        return
    key = reseal_secrets(secrets, old, dest, new)
    click.echo(f"wrote {dest} (public key {base64.urlsafe_b64encode(key).rstrip(b'=').decode()}, "
               f"unchanged); {secrets} is untouched", err=True)


@command.group("account")
def account() -> None:
    """Standalone-mode accounts (bearer tokens)."""


@account.command("create")
@click.argument("name")
@_db_option
def account_create(name: str, database: str) -> None:
    """Create account NAME (or give it a new token) and print its token once."""
    from ..vault.auth import TokenAuth
    from ..vault.server import open_store

    store = open_store(database)
    try:
        token = TokenAuth(store).create_account(name)
    finally:
        store.close()
    click.echo(token)


@account.command("list")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def account_list(database: str, as_json: bool) -> None:
    """List the accounts and their slots: name, slot, whether a key is deposited, guesses used.

    Each password-protected backup is one slot of its account; "(legacy)" is
    the slot of a record made before slots existed."""
    from ..vault.server import open_store
    from ..vault.store import split_record_key

    store = open_store(database)
    try:
        rows = store.list_accounts()
    finally:
        store.close()
    # A token-only account shows once with no slot; each record key is one slot.
    keyed = [(*split_record_key(k), s, u) for k, s, u in rows]
    # A realm record (docs/spec/realms.md §6.1) is a slot of the pseudo-account NAME 0x1E.
    from ..vault.realm import REALM_MARK

    realm = {(a[:-1], slot) for a, slot, _s, _u in keyed if a.endswith(REALM_MARK)}
    keyed = [(a[:-1] if a.endswith(REALM_MARK) else a, slot, s, u) for a, slot, s, u in keyed]
    with_records = {a for a, _slot, s, _u in keyed if s is not None}
    shown = [r for r in keyed if r[2] is not None or r[0] not in with_records]
    if as_json:
        click.echo(json.dumps([{"account": a, "slot": slot if s is not None else None,
                                "record": s, "used": u,
                                **({"realm": True} if (a, slot) in realm else {})}
                               for a, slot, s, u in shown], indent=2))
        return
    for name, slot, state, used in shown:
        where = f"{name}\t{slot or '(legacy)'}" if state is not None else f"{name}\t-"
        kind = " (realm)" if (name, slot) in realm else ""
        click.echo(f"{where}{kind}\t{state or 'no record'}\t{used} guess(es) used")


@account.command("delete")
@click.argument("name")
@_db_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed without a terminal).")
def account_delete(name: str, database: str, yes: bool) -> None:
    """Delete account NAME: its token, its deposited key, sessions and backup head.

    The user's backups then open only with their 64-digit key.
    """
    from ..vault.server import open_store

    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"deleting account {name} destroys its deposited backup key",
                             hint="pass --yes to confirm without a terminal")
        click.confirm(f"Delete account {name} and its deposited key for good?", abort=True,
                      err=True)
    store = open_store(database)
    try:
        existed = store.delete_account(name)
        # Its realm records too (realms.md §6.1: the slots of the pseudo-account NAME 0x1E).
        from ..vault.realm import realm_pseudo_account

        existed = store.delete_account(realm_pseudo_account(name)) or existed
    finally:
        store.close()
    if not existed:
        raise UsageError(f"no account {name} in this vault database")
    click.echo(f"deleted account {name}")


@command.command("status")
@vault_options
@global_options
@pass_app
def status(app: AppContext) -> None:
    """Show whether this repository's key is in the vault, the attempts left, and the
    account's slots (one per password-protected backup)."""
    from .. import password as pw

    backend = app.backend()
    if not has_password(backend) and not app.extra.get("vault") \
            and not app.extra.get("realm_urls"):
        raise UsageError("this repository has no password set up (no ext/vault.json)",
                         hint="enable one with 'strongroom enable --password'")
    st = pw.status(backend, access(app, backend, need_vault=True))
    if app.json:
        app.emit_json(st.to_json())
        return
    if st.threshold is not None:
        _realm_status(app, st)
        return
    where = f"vault {st.vault}: account {st.account}"
    if not st.enabled:
        app.echo(f"{where}: this repository has no password")
    elif st.locked:
        app.echo(f"{where}: PERMANENTLY LOCKED (too many wrong passwords); only the 64-digit "
                 "key opens this backup")
    elif st.exists:
        app.echo(f"{where}: key deposited, {st.attempts_left} of {st.attempt_limit} attempts left")
    else:
        app.echo(f"{where}: no key deposited")
    for x in st.slots:
        mine = " (this backup)" if st.enabled and x.slot == st.slot else ""
        state = "locked" if x.locked else f"{x.attempts_left} attempts left"
        app.echo(f"  slot {x.slot or '(legacy)'}: {state}{mine}")


#: ``AppContext.extra`` keys that say where the password protection is (vault_support).
_TARGET_KEYS = ("vault", "realm_urls", "threshold", "vault_key", "realm_keys", "vault_token",
                "vault_token_file", "vault_token_files")


@contextmanager
def _current_side(app: AppContext, token_files: tuple[str, ...]) -> Iterator[None]:
    """Within: the options describe the repository's current protection (its locator's
    vault or realms, with ``--from-token-file`` or else the same credential); after:
    the target given with ``--vault`` again."""
    saved = {k: app.extra.pop(k) for k in _TARGET_KEYS if k in app.extra}
    files = token_files or (() if len(saved.get("vault_token_files") or ()) > 1 else
                            tuple(saved.get("vault_token_files") or ()))
    if not token_files and len(saved.get("vault_token_files") or ()) > 1:
        raise UsageError("one --vault-token-file per target realm: say which token the current "
                         "protection takes", hint="pass --from-token-file PATH (once, or once "
                                                  "per current realm)")
    if files:
        app.extra["vault_token_file"], app.extra["vault_token_files"] = files[0], files
    try:
        yield
    finally:
        for k in _TARGET_KEYS:
            app.extra.pop(k, None)
        app.extra.update(saved)


@command.command("move", epilog="""\b
Examples:
  strongroom vault move --vault https://r1 --vault https://r2 --vault https://r3 \\
      --threshold 2 --vault-token-file ~/.realm-token --dry-run""")
@click.option("--from-token-file", "from_token_files", multiple=True, metavar="PATH",
              type=click.Path(allow_dash=True, dir_okay=False),
              help="The token of the current vault (or one per current realm, in the "
                   "locator's order); default: the target's, if it is one credential.")
@click.option("--dry-run", is_flag=True,
              help="Open and check everything, reach every target realm, write nothing.")
@vault_options
@global_options
@pass_app
def move(app: AppContext, from_token_files: tuple[str, ...], dry_run: bool) -> None:
    """Move this backup's password protection to the realm set given with --vault
    (several times): from one vault, or from another realm set.  The backup is not
    re-uploaded; the password stays the same (docs/spec/realms.md §4.3)."""
    from .. import password as pw
    from ..password import RealmAccess
    from ..realms import client as rc
    from ..realms.locator import read_realm_locator
    from .errors import say
    from .vault_support import read_password

    backend = app.backend()
    if not has_password(backend):
        raise UsageError("this repository has no password set up (no ext/vault.json)",
                         hint="protect it with 'strongroom enable --password --vault URL ...'")
    targets = app.extra.get("realm_urls") or ()
    if len(targets) < 2:
        raise UsageError("give the target realm set: --vault URL at least twice",
                         hint="moving to one vault is 'disable --password' then 'enable "
                              "--password --vault URL'")
    current = read_realm_locator(backend)
    if current is not None and [r.url for r in current.realms] == [
            u.strip().rstrip("/") for u in targets]:
        raise UsageError("this backup is already protected by exactly this realm set",
                         hint="use 'change-password' to re-share the key over it")
    with _current_side(app, from_token_files):
        repository = app.open_repository()  # K from the key file, device key or the password
        old = access(app, backend, need_vault=True)
        source = (f"realm set ({current.threshold} of {len(current.realms)}) "
                  + ", ".join(r.url for r in current.realms)) if current is not None else \
            f"vault {old.url}"
    new = access(app, None, need_vault=True)
    assert isinstance(new, RealmAccess)
    target = f"realm set ({new.threshold} of {len(new.realms)}) " + ", ".join(
        r.url for r in new.realms)
    # Every target realm reachable, its token good and its key the pinned one: before any
    # write, and all a dry run does beyond opening the repository.
    for client, pin in zip(new.clients(), new.pins(), strict=True):
        client.whoami()  # the token, asked now (errors name the realm's URL)
        rc.realm_id(client, pin)
    if dry_run:
        repository.verify_head()
        if app.json:
            app.emit_json({"dry_run": True, "from": source, "to": [r.url for r in new.realms],
                           "threshold": new.threshold})
            return
        app.echo(f"would move the password protection from {source} to {target}; every target "
                 "realm answered, nothing was written")
        return
    password = read_password(app)
    loc = pw.move_to_realms(repository, old, new, password,
                            on_step=None if app.json else lambda s: say("note", s))
    if app.json:
        app.emit_json({"moved": True, "from": source, "to": [r.url for r in loc.realms],
                       "threshold": loc.threshold, "account": loc.account})
        return
    app.echo(f"moved the password protection from {source} to {target} (account "
             f"{loc.account}); the backup itself was not touched")


def _realm_status(app: AppContext, st: Any) -> None:
    """``vault status`` of a realm set: the set, then each realm's attempts left."""
    n = len(st.realms)
    where = f"realm set ({st.threshold} of {n}): account {st.account}"
    if not st.enabled:
        app.echo(f"{where}: this repository has no password")
        return
    if st.locked:
        app.echo(f"{where}: fewer than {st.threshold} realms still hold the key; only the "
                 "64-digit key opens this backup")
    else:
        app.echo(f"{where}: key shared, {st.attempts_left} of {st.attempt_limit} attempts left")
    for r in st.realms:
        if r.error is not None:
            state = f"unavailable ({r.error})"
        elif r.locked:
            state = "locked"
        elif not r.exists:
            state = "no record"
        else:
            state = f"{r.attempts_left} attempts left"
        app.echo(f"  realm {r.index} {r.url}: {state}")

