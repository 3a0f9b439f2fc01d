"""Password mode in a chat app, with only the public API: the whole journey.

Run against a Backup Key Vault (``strongroom vault serve``) with an account token:

    STRONGROOM_VAULT=http://127.0.0.1:8443 STRONGROOM_VAULT_TOKEN=srv1_... \
        python examples/password_mode.py /tmp/chat-backup-demo

It backs up a small chat folder under a fresh key protected by a password, then
plays a new phone that has only the password and the app's login, and shows the
attempts left, a password change and turning the password off.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from strongroom import BackupKey, Repository, password
from strongroom.errors import InvalidLogin
from strongroom.storage.registry import open_backend


def main(workdir: Path) -> int:
    chats = workdir / "phone" / "chats"
    chats.mkdir(parents=True, exist_ok=True)
    (chats / "msgstore.db").write_bytes(b"hello from the old phone\n" * 1000)
    backend = open_backend(str(workdir / "backup"), create=True)

    def device(name: str) -> password.VaultAccess:
        # What the app configures once: its vault, the user's token, a private folder.
        return password.VaultAccess(os.environ["STRONGROOM_VAULT"],
                                    os.environ["STRONGROOM_VAULT_TOKEN"],
                                    device_dir=workdir / name / "heads")

    # The old phone: a random 256-bit key, protected by a password at the vault.
    with device("phone") as phone, Repository.create(
            backend, BackupKey.generate()) as repo:
        password.enable(repo, phone, "correct horse battery staple")
        print("backed up snapshot", repo.backup([chats]).snapshot_id[:8])

    # A new phone: only the password and the app's login.
    with device("new-phone") as new_phone:
        print("attempts left:", password.attempts_left(backend, new_phone))
        try:
            password.open_with_password(backend, new_phone, "wrong guess")
        except InvalidLogin as exc:
            print("wrong password,", exc.attempts_left, "attempts left")
        with password.open_with_password(backend, new_phone,
                                         "correct horse battery staple") as repo:
            repo.restore("latest", workdir / "new-phone" / "restored")  # head verified first
            password.change_password(repo, new_phone, "a new password")
            st = password.status(backend, new_phone)
            print("slot", st.slot[:8] if st.slot else None, "attempts left", st.attempts_left)
            password.disable(repo, new_phone)  # only the 64-digit key opens it now
    restored = next((workdir / "new-phone" / "restored").rglob("msgstore.db"))
    same = restored.read_bytes() == (chats / "msgstore.db").read_bytes()
    print("restored byte-identical:", same)
    backend.close()
    return 0 if same else 1


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    sys.exit(main(target))
