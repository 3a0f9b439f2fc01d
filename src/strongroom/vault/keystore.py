"""Where the vault's root key lives, and the sealed secrets file it protects.

The vault's long-term secrets (the OPAQUE ``ServerSetup``: OPRF seed and AKE
private key, plus the AES-256 record key that seals records at rest) are
stored only as one AEAD blob, ``secrets.json``, sealed by a *root*:

* :class:`Pkcs11Keystore` — a non-extractable AES-256 key inside a PKCS#11
  token (SoftHSM2 by default, any HSM in production); sealing is AES-GCM
  computed by the token, so the root key never enters this process.
* :class:`SoftwareKeystore` — for development: a passphrase stretched with
  Argon2id into an AES-256-GCM key (parameters and salt in the file).

Neither the secrets nor the root key is ever written in plaintext.
"""

from __future__ import annotations

import base64
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ..errors import LocalWriteError, UsageError, VaultProtocolError
from ..securefile import write_secret_file
from . import _opaque as opaque
from . import labels
from .core import VaultSecrets
from .sealing import NONCE, frame, open_sealed, seal, unframe

Rng = Callable[[int], bytes]


class Keystore(ABC):
    """A root that seals and opens small secrets."""

    kind: str = "?"

    @abstractmethod
    def seal(self, plaintext: bytes, ad: bytes, rng: Rng = os.urandom) -> bytes:
        """AEAD-seal ``plaintext`` under the root key."""

    @abstractmethod
    def open(self, blob: bytes, ad: bytes) -> bytes:
        """Open a blob made by :meth:`seal`; ``UsageError`` if the root does not open it."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Non-secret parameters written next to the sealed blob."""


class SoftwareKeystore(Keystore):
    """Development root: passphrase → Argon2id → AES-256-GCM key."""

    kind = "software"

    def __init__(self, passphrase: str | bytes, *, salt: bytes, memory_kib: int = 65536,
                 iterations: int = 3, lanes: int = 1) -> None:
        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        if not pw:
            raise UsageError("the vault keystore passphrase is empty")
        self._params = {"memory_kib": memory_kib, "iterations": iterations, "lanes": lanes}
        self._salt = salt
        self._key = Argon2id(salt=salt, length=32, iterations=iterations, lanes=lanes,
                             memory_cost=memory_kib).derive(pw)

    def seal(self, plaintext: bytes, ad: bytes, rng: Rng = os.urandom) -> bytes:
        return seal(self._key, plaintext, ad, rng)

    def open(self, blob: bytes, ad: bytes) -> bytes:
        try:
            return open_sealed(self._key, blob, ad, "vault secrets")
        except VaultProtocolError:
            raise UsageError("the keystore passphrase does not open the vault secrets") from None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "kdf": "argon2id", "salt": _b64(self._salt), **self._params}

    def __repr__(self) -> str:
        return "<SoftwareKeystore>"


class Pkcs11Keystore(Keystore):
    """Production root: a non-extractable AES-256 key in a PKCS#11 token."""

    kind = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str, key_label: str = "strongroom-vault-root",
                 *, create: bool = False) -> None:
        import pkcs11  # optional dependency: only the vault needs it

        self._p11 = pkcs11
        self.module, self.token_label, self.key_label = module, token_label, key_label
        try:
            token = pkcs11.lib(module).get_token(token_label=token_label)
            try:
                self._session = token.open(user_pin=pin, rw=True)
            except pkcs11.UserAlreadyLoggedIn:
                # PKCS#11 logins are per process: another keystore object of
                # this process is logged in, and this session shares that login.
                self._session = token.open(rw=True)
        except pkcs11.PKCS11Error as exc:
            raise UsageError(f"cannot open PKCS#11 token {token_label!r}: {type(exc).__name__}") from exc
        self._key = self._find_or_create(create)

    def _find_or_create(self, create: bool) -> Any:
        p = self._p11
        try:
            return self._session.get_key(p.ObjectClass.SECRET_KEY, p.KeyType.AES, label=self.key_label)
        except p.NoSuchKey:
            if not create:
                raise UsageError(f"no key {self.key_label!r} in token {self.token_label!r}") from None
        attrs = p.Attribute
        template = {attrs.EXTRACTABLE: False, attrs.SENSITIVE: True, attrs.TOKEN: True,
                    attrs.ENCRYPT: True, attrs.DECRYPT: True, attrs.WRAP: True, attrs.UNWRAP: True}
        return self._session.generate_key(p.KeyType.AES, 256, label=self.key_label, store=True,
                                          template=template)

    @property
    def extractable(self) -> bool:
        """Whether the token would let the root key out (must be False)."""
        return bool(self._key[self._p11.Attribute.EXTRACTABLE])

    def seal(self, plaintext: bytes, ad: bytes, rng: Rng = os.urandom) -> bytes:
        nonce = rng(NONCE)
        params = self._p11.mechanisms.GCMParams(nonce, ad, 128)
        ct = self._key.encrypt(plaintext, mechanism=self._p11.Mechanism.AES_GCM, mechanism_param=params)
        return nonce + bytes(ct)

    def open(self, blob: bytes, ad: bytes) -> bytes:
        params = self._p11.mechanisms.GCMParams(blob[:NONCE], ad, 128)
        try:
            return bytes(self._key.decrypt(blob[NONCE:], mechanism=self._p11.Mechanism.AES_GCM,
                                           mechanism_param=params))
        except self._p11.PKCS11Error:
            raise UsageError("the PKCS#11 root key does not open the vault secrets") from None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "module": self.module, "token_label": self.token_label,
                "key_label": self.key_label}

    def close(self) -> None:
        """Close the token session."""
        self._session.close()

    def __repr__(self) -> str:
        return f"<Pkcs11Keystore {self.token_label}/{self.key_label}>"


def create_secrets(path: str | Path, keystore: Keystore, rng: Rng = os.urandom) -> VaultSecrets:
    """Generate a new OPAQUE server setup and record key; write them sealed to ``path``."""
    path = Path(path)
    if path.exists():
        raise UsageError(f"vault secrets already exist at {path}; refusing to overwrite")
    secrets = VaultSecrets(opaque.ServerSetup.generate(rng), rng(32))
    _write_secrets(path, secrets, keystore, rng)
    return secrets


def _write_secrets(path: Path, secrets: VaultSecrets, keystore: Keystore, rng: Rng) -> None:
    blob = keystore.seal(frame(secrets.setup.to_bytes(), secrets.record_key), labels.SECRETS_AD, rng)
    doc = {"format": "strongroom-vault-secrets/1", "keystore": keystore.describe(),
           "server_public_key": _b64(bytes(secrets.setup.server_public_key)), "sealed": _b64(blob)}
    try:
        # Never replaces: two vaults starting at once must not both think they created it.
        write_secret_file(path, (json.dumps(doc, indent=2) + "\n").encode(), replace=False)
    except FileExistsError:
        raise UsageError(f"vault secrets already exist at {path}; refusing to overwrite") from None
    except OSError as exc:
        raise LocalWriteError(f"cannot write vault secrets {path}: {exc.strerror}",
                              hint="check STRONGROOM_VAULT_SECRETS and its directory") from None


def reseal_secrets(src: str | Path, old: Keystore, dest: str | Path, new: Keystore,
                   rng: Rng = os.urandom) -> bytes:
    """Rotate the root: the secrets of ``src`` (opened with ``old``) sealed under ``new`` at ``dest``.

    The secrets themselves do not change (clients pin the server public key), so
    every vault node can move to ``dest`` one at a time.  ``dest`` is never
    replaced and ``src`` is left as it is; ``dest`` is read back with ``new``
    before this returns.  Returns the server public key.
    """
    secrets = load_secrets(src, old)
    dest = Path(dest)
    if dest.exists() or os.path.lexists(dest):
        raise UsageError(f"{dest} already exists; refusing to overwrite",
                         hint="name a new file; delete the old one only after every node moved")
    _write_secrets(dest, secrets, new, rng)
    again = load_secrets(dest, new)
    if again.setup.to_bytes() != secrets.setup.to_bytes() or again.record_key != secrets.record_key:
        raise VaultProtocolError(f"{dest} does not read back as the same secrets")  # pragma: no cover
    return bytes(secrets.setup.server_public_key)


def load_secrets(path: str | Path, keystore: Keystore) -> VaultSecrets:
    """Open the sealed secrets file with ``keystore``."""
    try:
        doc = json.loads(Path(path).read_text())
        blob = base64.urlsafe_b64decode(doc["sealed"] + "==")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read vault secrets {path}: {type(exc).__name__}") from exc
    setup_bytes, record_key = unframe(keystore.open(blob, labels.SECRETS_AD), 2)
    return VaultSecrets(opaque.ServerSetup.from_bytes(setup_bytes), record_key)


def keystore_params(path: str | Path) -> dict[str, Any]:
    """The non-secret keystore description stored in a secrets file."""
    try:
        return dict(json.loads(Path(path).read_text())["keystore"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read vault secrets {path}: {type(exc).__name__}") from exc


def software_keystore_for(path: str | Path, passphrase: str, rng: Rng = os.urandom,
                          **params: int) -> SoftwareKeystore:
    """The software keystore of an existing secrets file, or a new one (new salt)."""
    if Path(path).exists():
        d = keystore_params(path)
        if d.get("kind") != "software":
            raise UsageError(f"{path} is sealed by a {d.get('kind')} keystore, not a passphrase")
        return SoftwareKeystore(passphrase, salt=base64.urlsafe_b64decode(d["salt"] + "=="),
                                memory_kib=d["memory_kib"], iterations=d["iterations"],
                                lanes=d["lanes"])
    return SoftwareKeystore(passphrase, salt=rng(16), **params)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


__all__ = [
    "Keystore",
    "Pkcs11Keystore",
    "SoftwareKeystore",
    "create_secrets",
    "keystore_params",
    "load_secrets",
    "reseal_secrets",
    "software_keystore_for",
]
