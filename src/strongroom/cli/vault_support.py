"""What the password commands share: vault options, the password, the key source.

Options (stored in ``AppContext.extra``): ``--vault URL`` / ``STRONGROOM_VAULT``,
the token (``cli/vaulttoken.py``: never an argument), ``--vault-key`` /
``STRONGROOM_VAULT_KEY`` (the vault public key to pin, base64url; otherwise
trust on first use), ``--password-file`` / ``STRONGROOM_PASSWORD`` for
automation, else a hidden prompt.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..crypto.keys import BackupKey
from ..errors import UsageError
from .context import AppContext
from .errors import say
from .keysource import KeyRequest, register_key_source
from .vaulttoken import HINT as TOKEN_HINT
from .vaulttoken import token_option_specs, vault_token

ENV_VAULT = "STRONGROOM_VAULT"
ENV_VAULT_KEY = "STRONGROOM_VAULT_KEY"
ENV_PASSWORD = "STRONGROOM_PASSWORD"
F = TypeVar("F", bound=Callable[..., Any])


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _p: click.Parameter, value: Any) -> Any:
        if value not in (None, False):
            ctx.ensure_object(AppContext).extra[name] = value
        return value
    return callback


def _store_one_or_many(one: str, many: str) -> Any:
    """A callback storing a repeatable option: one value under ``one`` (a vault, as
    before), several under ``many`` (the realms of a realm set, in ``--vault`` order)."""
    def callback(ctx: click.Context, _p: click.Parameter, value: Any) -> Any:
        values = tuple(value or ())
        if len(values) == 1:
            ctx.ensure_object(AppContext).extra[one] = values[0]
        elif len(values) > 1:
            ctx.ensure_object(AppContext).extra[many] = values
        return value
    return callback


#: ``--vault``: one is a vault; several are the realms of a realm set.
_store_vaults = _store_one_or_many("vault", "realm_urls")
#: ``--vault-key``: one pins a vault; several pin the realms of a set, in the order of
#: ``--vault`` (an environment value: separated by spaces).
_store_vault_keys = _store_one_or_many("vault_key", "realm_keys")


def has_password(backend: Any) -> bool:
    """Whether the repository has a locator: one vault (version 1/2) or a realm set (3)."""
    from ..client import flows
    from ..realms.locator import read_realm_locator

    return read_realm_locator(backend) is not None or flows.read_locator(backend) is not None


def _option_specs() -> list[tuple[list[str], dict[str, Any]]]:
    return [
        (["--vault"], {"metavar": "URL", "envvar": ENV_VAULT, "expose_value": False,
                       "multiple": True, "callback": _store_vaults,
                       "help": f"Backup Key Vault URL [env {ENV_VAULT}]; give it several times "
                               "for a threshold realm set (with --threshold)."}),
        (["--threshold"], {"metavar": "K", "type": click.IntRange(1, 16), "expose_value": False,
                           "callback": _store("threshold"),
                           "help": "With several --vault: how many realms recover the key "
                                   "(a strict majority; default the smallest one)."}),
        *token_option_specs(),
        (["--vault-key"], {"metavar": "B64", "envvar": ENV_VAULT_KEY, "expose_value": False,
                           "multiple": True, "callback": _store_vault_keys,
                           "help": f"Pin this vault public key instead of trusting on first use "
                                   f"[env {ENV_VAULT_KEY}]; with several --vault, once per "
                                   "realm in the same order."}),
        (["--password-file"], {"metavar": "PATH", "expose_value": False,
                                   "callback": _store("password_file"),
                                   "help": f"Read the password from this file [or env {ENV_PASSWORD}]."}),
    ]


def vault_options(f: F) -> F:
    """Decorator: add the vault options to a command."""
    for decls, kw in reversed(_option_specs()):
        f = click.option(*decls, **kw)(f)
    return f


def password_given(app: AppContext) -> bool:
    """Whether a password came from a file or the environment."""
    return bool(app.extra.get("password_file") or app.env.get(ENV_PASSWORD))


def read_password(app: AppContext, *, prompt: str = "Backup password", confirm: bool = False) -> str:
    """The password from --password-file, STRONGROOM_PASSWORD, or a hidden prompt."""
    path = app.extra.get("password_file")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read the password file {path}: {exc.strerror}") from exc
    elif app.env.get(ENV_PASSWORD):
        text = app.env[ENV_PASSWORD]
    elif app.stdin_is_tty():
        text = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    else:
        raise UsageError("no password given",
                         hint=f"pass --password-file PATH, set {ENV_PASSWORD}, or run on a terminal")
    if not text:
        raise UsageError("the password is empty")
    return text


def vault_client(app: AppContext, *, url: str | None = None, account: str | None = None) -> Any:
    """A client for ``--vault`` (or ``url``) as the token's account; closed with the command."""
    from ..client.vault_client import VaultClient

    configured = app.extra.get("vault")
    if configured:
        _remember_vault(app, configured)
        url = configured
    elif url:
        _check_trusted_vault(app, url)
    else:
        raise UsageError("no vault given", hint=f"pass --vault URL or set {ENV_VAULT}")
    token = vault_token(app)
    if not token:
        raise UsageError("no vault token given", hint=TOKEN_HINT)
    if account is None:
        with VaultClient(url, None, token) as probe:
            account = probe.whoami()
    client = VaultClient(url, account, token)
    app._closers.append(client.close)
    return client


def _trusted_vaults_file(app: AppContext) -> Path:
    from .keystore import config_dir

    return config_dir(app.env) / "trusted-vaults"


def _trusted_vaults(app: AppContext) -> set[str]:
    from ..securefile import check_private_dir

    path = _trusted_vaults_file(app)
    if not os.path.lexists(path.parent):
        return set()
    try:
        # Another local user who could write here could make the token go to their vault.
        check_private_dir(path.parent)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return {line.strip() for line in text.splitlines() if line.strip()}


def _remember_vault(app: AppContext, url: str) -> None:
    """Record a vault URL the user gave on this device (``--vault``/env): each node's URL
    of a comma-separated list, since a locator names only the first."""
    urls = {u.strip().rstrip("/") for u in url.split(",")}
    known = _trusted_vaults(app)
    if urls <= known:
        return
    from ..securefile import ensure_private_dir, write_secret_file

    path = _trusted_vaults_file(app)
    ensure_private_dir(path.parent)
    write_secret_file(path, "".join(f"{u}\n" for u in sorted(known | urls)).encode("utf-8"))


def _check_trusted_vault(app: AppContext, url: str) -> None:
    """Refuse to send the account token to a vault URL that only storage named.

    ``ext/vault.json`` is plaintext in storage the provider controls: a
    provider that rewrote its URL could collect the account's token and spend
    its guesses at the real vault.  So a URL from the locator is used only if
    the user named it on this device before (``--vault``/``STRONGROOM_VAULT``),
    or confirms it on a terminal now.
    """
    url = url.rstrip("/")
    if url in _trusted_vaults(app):
        return
    if app.stdin_is_tty() and click.confirm(
        f"This repository says its key is held by the vault at {url}. "
        "Send your vault token and password there?", default=False, err=True
    ):
        _remember_vault(app, url)
        return
    raise UsageError(f"the repository names the vault at {url}, which this device has not been told to trust",
                     hint=f"confirm it with --vault {url} (or {ENV_VAULT}) if that is your vault")


def pinned_key(app: AppContext) -> bytes | None:
    """The vault key pinned by configuration, if any."""
    if app.extra.get("realm_keys"):
        raise UsageError("several --vault-key for one vault",
                         hint="give --vault once per realm, each with its --vault-key")
    text = app.extra.get("vault_key") or app.env.get(ENV_VAULT_KEY)
    if not text:
        return None
    return _decode_key(text)


def _decode_key(text: str, what: str = "the vault's") -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise UsageError(f"--vault-key must be {what} 32-byte public key in base64url")
    return raw


def _realm_pins(app: AppContext, n: int) -> list[bytes | None]:
    """The realms' keys from ``--vault-key`` (none, or one per realm in order)."""
    keys = app.extra.get("realm_keys") or (
        (app.extra["vault_key"],) if app.extra.get("vault_key") else ())
    if not keys:
        return [None] * n
    if len(keys) != n:
        raise UsageError(f"{len(keys)} --vault-key for {n} realms",
                         hint="give one --vault-key per --vault, in the same order, or none")
    return [_decode_key(k, f"realm {i}'s") for i, k in enumerate(keys, start=1)]


def confirm_last(app: AppContext) -> Callable[[], bool]:
    """Ask before the last attempt on a terminal; refuse it in automation."""
    def ask() -> bool:
        say("warning", "only ONE password attempt is left: if it is wrong, the vault destroys "
                       "the backup key for good")
        if not app.stdin_is_tty():
            return bool(app.env.get("STRONGROOM_LAST_ATTEMPT") == "yes")
        return click.confirm("Use the last attempt now?", default=False, err=True)
    return ask


def _recover(request: KeyRequest) -> BackupKey | None:
    from ..password import recover_key

    if not has_password(request.backend):
        return None
    app = request.app
    vault = access(app, request.backend, need_vault=False)
    if not getattr(vault, "token", True) or not realm_tokens_given(app, vault):
        raise UsageError("no vault token given", hint=TOKEN_HINT)
    password = read_password(app)
    key = recover_key(request.backend, vault, password, confirm_last=confirm_last(app))
    say("note", "the vault released this backup's key")
    return key


def from_vault(request: KeyRequest) -> BackupKey | None:
    """The vault password source (after the key file and the device key, so a
    device that has K never spends a guess).

    With a password from ``--password-file`` / ``STRONGROOM_PASSWORD`` it asks
    the vault (an error if the repository has no password); otherwise, on a
    terminal, it prompts for the password when the repository has one.
    """
    if password_given(request.app):
        key = _recover(request)
        if key is None:
            raise UsageError("this repository has no password set up",
                             hint="use the 64-digit key, or 'strongroom enable --password' to add one")
        return key
    if not request.app.stdin_is_tty():
        return None
    return _recover(request)


# -- the library's password journey, configured from the command line --------------------


def access(app: AppContext, backend: Any, *, need_vault: bool = False) -> Any:
    """The :class:`strongroom.password.VaultAccess` of this invocation for ``backend``.

    The vault URL is ``--vault`` (remembered as trusted), else the one the
    repository's locator names if this device trusts it; the token comes from
    ``cli/vaulttoken.py``.  Without a token (and ``need_vault`` False) the
    rollback check is skipped with a warning; the library does the rest.
    """
    from ..client import flows
    from ..password import VaultAccess
    from ..realms.locator import read_realm_locator
    from .keystore import config_dir

    realm_loc = read_realm_locator(backend) if backend is not None else None
    if realm_loc is not None or app.extra.get("realm_urls"):
        return _realm_access(app, realm_loc, need_vault=need_vault)
    loc = flows.read_locator(backend) if backend is not None else None
    token = vault_token(app)
    url = app.extra.get("vault")
    if url:
        _remember_vault(app, url)
    elif loc is not None:
        url = loc.url
        if token:
            _check_trusted_vault(app, url)
    elif need_vault:
        raise UsageError("no vault given", hint=f"pass --vault URL or set {ENV_VAULT}")
    if need_vault and not token:
        raise UsageError("no vault token given", hint=TOKEN_HINT)
    if token and not need_vault and loc is None:
        token = None  # nothing to check: never send the token anywhere
    result = VaultAccess(url or "", token, account=loc.account if loc else None,
                         pinned_key=pinned_key(app), device_dir=config_dir(app.env) / "heads",
                         on_skip=_warn if not need_vault else None)
    app.on_close(result.close)
    return result


def realm_tokens_given(app: AppContext, vault: Any) -> bool:
    """For a realm set: whether every realm has a token (a single vault: True)."""
    realms = getattr(vault, "realms", None)
    return realms is None or all(r.token for r in realms)


def _realm_tokens(app: AppContext, n: int) -> list[str | None]:
    """One token for every realm (one ``--vault-token-file`` or the environment: the same
    credential, e.g. the app's JWT), or one file per realm in the order of ``--vault``."""
    from .vaulttoken import token_from_file

    files = app.extra.get("vault_token_files") or ()
    if len(files) > 1:
        if len(files) != n:
            raise UsageError(f"{len(files)} --vault-token-file for {n} realms",
                             hint="give one token file for all realms, or one per --vault, in "
                                  "the same order")
        return [token_from_file(app, str(f)) for f in files]
    token = vault_token(app)
    return [token] * n


def _realm_access(app: AppContext, loc: Any, *, need_vault: bool) -> Any:
    """The :class:`strongroom.password.RealmAccess` of this invocation (realms.md)."""
    from ..client.vault_client import VaultClient
    from ..password import RealmAccess, RealmConfig
    from .keystore import config_dir

    given = app.extra.get("realm_urls")
    if given:
        urls = [u.strip().rstrip("/") for u in given]
        for u in urls:
            _remember_vault(app, u)
    elif loc is not None:
        urls = [r.url for r in loc.realms]
    else:
        raise UsageError("no realms given", hint="pass --vault URL several times")
    if len(set(urls)) != len(urls):
        raise UsageError("a realm is given twice")
    tokens = _realm_tokens(app, len(urls))
    if loc is not None and not given and any(tokens):
        for u in urls:
            _check_trusted_vault(app, u)
    if need_vault and not all(tokens):
        raise UsageError("no vault token given", hint=TOKEN_HINT)
    n = len(urls)
    threshold = app.extra.get("threshold") or (loc.threshold if loc is not None else n // 2 + 1)
    if loc is not None and threshold != loc.threshold:
        raise UsageError(f"this repository's realm set has threshold {loc.threshold}, not "
                         f"{threshold}")
    if not n // 2 < threshold <= n:
        raise UsageError(f"--threshold must be a strict majority of the {n} realms "
                         f"({n // 2 + 1} to {n})")
    account = loc.account if loc is not None else None
    if account is None and tokens[0]:
        with VaultClient(urls[0], None, tokens[0]) as probe:
            account = probe.whoami()
    pins = _realm_pins(app, n)
    result = RealmAccess([RealmConfig(u, t, p)
                          for u, t, p in zip(urls, tokens, pins, strict=True)],
                         threshold=threshold, account=account or "",
                         device_dir=config_dir(app.env) / "heads",
                         on_skip=_warn if not need_vault else None)
    app.on_close(result.close)
    return result


def _warn(message: str) -> None:
    say("warning", message)


def install() -> None:
    """Register the vault password as a key source (after the key file and device key)."""
    register_key_source("vault", from_vault, before="environment")


__all__ = ["access", "has_password", "install", "read_password", "vault_client", "vault_options"]
