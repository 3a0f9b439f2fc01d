"""Unit tests of strongroom.opaque: flows, errors, pinning, fake KE2, serialization."""

from __future__ import annotations

import dataclasses
import hmac

import pysodium
import pytest

from strongroom.errors import InvalidLogin, ProtocolError, ServerKeyMismatch
from strongroom.opaque import (
    KE2_SIZE,
    Argon2idKSF,
    IdentityKSF,
    LoginClient,
    LoginServer,
    OpaqueConfig,
    RegistrationClient,
    RegistrationServer,
    ServerLoginState,
    ServerSetup,
)
from strongroom.opaque.messages import KE2

FAST = OpaqueConfig(ksf=IdentityKSF())
TINY_ARGON = OpaqueConfig(ksf=Argon2idKSF(memory_kib=64, iterations=1, parallelism=1))
PASSWORD = b"correct horse battery staple"
CRED_ID = b"account-42"


def register(setup: ServerSetup, password: bytes = PASSWORD, config: OpaqueConfig = FAST,
             **ids: bytes | None) -> tuple[bytes, bytes]:
    request, state = RegistrationClient.start(password, config=config)
    response = RegistrationServer.respond(setup, request, CRED_ID, config=config)
    return RegistrationClient.finish(state, response, config=config, **ids)


def login(setup: ServerSetup, record: bytes | None, password: bytes = PASSWORD,
          config: OpaqueConfig = FAST, client_config: OpaqueConfig | None = None,
          client_ids: dict | None = None, server_ids: dict | None = None,
          pin: bytes | None = None) -> tuple[bytes, bytes, bytes]:
    """Run a login; return (client session key, server session key, export key)."""
    ke1, c_state = LoginClient.start(password, config=client_config or config)
    ke2, s_state = LoginServer.start(setup, record, ke1, CRED_ID, config=config,
                                     **(server_ids or {}))
    ke3, session, export = LoginClient.finish(
        c_state, ke2, config=client_config or config, expected_server_public_key=pin,
        **(client_ids or {}),
    )
    return session, LoginServer.finish(s_state, ke3), export


@pytest.fixture(scope="module")
def setup() -> ServerSetup:
    return ServerSetup.generate()


def test_login_with_argon2id_gives_equal_keys(setup: ServerSetup) -> None:
    record, export_key = register(setup, config=TINY_ARGON)
    client_key, server_key, login_export = login(setup, record, config=TINY_ARGON)
    assert client_key == server_key and len(client_key) == 64
    assert login_export == export_key


def test_identities_and_context_are_bound(setup: ServerSetup) -> None:
    config = OpaqueConfig(ksf=IdentityKSF(), context=b"strongroom-test")
    ids = {"client_identity": b"alice", "server_identity": b"vault.example"}
    record, _ = register(setup, config=config, **ids)
    client_key, server_key, _ = login(setup, record, config=config, client_ids=ids,
                                      server_ids=ids)
    assert client_key == server_key
    with pytest.raises(InvalidLogin):  # the client remembers another server name
        login(setup, record, config=config, server_ids=ids,
              client_ids={**ids, "server_identity": b"evil.example"})
    with pytest.raises(InvalidLogin):  # the server names another client
        login(setup, record, config=config, client_ids=ids,
              server_ids={**ids, "client_identity": b"mallory"})
    with pytest.raises(InvalidLogin):  # the two sides disagree on the context
        login(setup, record, config=config, client_config=FAST, client_ids=ids,
              server_ids=ids)


def test_wrong_password_and_forged_server_give_the_same_error(setup: ServerSetup) -> None:
    record, _ = register(setup)
    with pytest.raises(InvalidLogin) as wrong_password:
        login(setup, record, password=b"Correct horse battery staple")
    ke1, c_state = LoginClient.start(PASSWORD, config=FAST)
    ke2, _ = LoginServer.start(setup, record, ke1, CRED_ID, config=FAST)
    forged = ke2[:-1] + bytes([ke2[-1] ^ 1])  # flip a bit of the server MAC
    with pytest.raises(InvalidLogin) as bad_mac:
        LoginClient.finish(c_state, forged, config=FAST)
    assert type(wrong_password.value) is type(bad_mac.value)
    assert str(wrong_password.value) == str(bad_mac.value)
    assert PASSWORD.decode() not in str(wrong_password.value)


def test_ksf_parameters_must_match(setup: ServerSetup) -> None:
    record, _ = register(setup, config=TINY_ARGON)
    other = OpaqueConfig(ksf=Argon2idKSF(memory_kib=64, iterations=2, parallelism=1))
    with pytest.raises(InvalidLogin):
        login(setup, record, config=TINY_ARGON, client_config=other)


def test_bad_ke3_is_invalid_login_and_short_ke3_is_protocol_error(setup: ServerSetup) -> None:
    record, _ = register(setup)
    ke1, c_state = LoginClient.start(PASSWORD, config=FAST)
    ke2, s_state = LoginServer.start(setup, record, ke1, CRED_ID, config=FAST)
    ke3, _, _ = LoginClient.finish(c_state, ke2, config=FAST)
    with pytest.raises(InvalidLogin):
        LoginServer.finish(s_state, bytes([ke3[0] ^ 0x80]) + ke3[1:])
    with pytest.raises(ProtocolError):
        LoginServer.finish(s_state, ke3[:-1])
    with pytest.raises(ProtocolError):
        LoginServer.finish(s_state, ke3 + b"\x00")


def test_unknown_credential_gets_a_fake_ke2_that_never_verifies(setup: ServerSetup) -> None:
    record, _ = register(setup)
    ke1, c_state = LoginClient.start(PASSWORD, config=FAST)
    real, _ = LoginServer.start(setup, record, ke1, CRED_ID, config=FAST)
    fake, fake_state = LoginServer.start(setup, None, ke1, CRED_ID, config=FAST)
    again, _ = LoginServer.start(setup, None, ke1, CRED_ID, config=FAST)
    assert len(fake) == len(real) == KE2_SIZE
    real_msg, fake_msg, again_msg = KE2.parse(real), KE2.parse(fake), KE2.parse(again)
    # The OPRF answer depends only on the seed, the identifier and KE1, as for a
    # registered account, and everything else is fresh every time.
    assert fake_msg.evaluated_message == real_msg.evaluated_message
    assert fake_msg.masked_response != again_msg.masked_response
    assert fake_msg.server_public_keyshare != again_msg.server_public_keyshare
    with pytest.raises(InvalidLogin):
        LoginClient.finish(c_state, fake, config=FAST)
    with pytest.raises(InvalidLogin):
        LoginServer.finish(fake_state, bytes(64))


def test_pinned_server_key(setup: ServerSetup) -> None:
    other = ServerSetup.generate()
    request, state = RegistrationClient.start(PASSWORD, config=FAST)
    response = RegistrationServer.respond(setup, request, CRED_ID, config=FAST)
    with pytest.raises(ServerKeyMismatch):
        RegistrationClient.finish(state, response, config=FAST,
                                  expected_server_public_key=other.server_public_key)
    record, _ = RegistrationClient.finish(state, response, config=FAST,
                                          expected_server_public_key=setup.server_public_key)
    login(setup, record, pin=setup.server_public_key)
    with pytest.raises(ServerKeyMismatch):
        login(setup, record, pin=other.server_public_key)
    assert issubclass(ServerKeyMismatch, ProtocolError)


def test_compare_digest_checks_every_mac(setup: ServerSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((bytes(a), bytes(b)))
        return real_compare(a, b)

    record, _ = register(setup)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    ke1, c_state = LoginClient.start(PASSWORD, config=FAST)
    ke2, s_state = LoginServer.start(setup, record, ke1, CRED_ID, config=FAST)
    ke3, _, _ = LoginClient.finish(c_state, ke2, config=FAST)
    LoginServer.finish(s_state, ke3)
    # Envelope auth tag, server MAC (the last 64 bytes of KE2), client MAC (KE3).
    assert len(calls) == 3
    assert calls[0][1] == record[-64:]
    assert calls[1][1] == ke2[-64:]
    assert calls[2] == (ke3, ke3)


def test_server_state_and_setup_round_trip(setup: ServerSetup) -> None:
    assert ServerSetup.from_bytes(setup.to_bytes()) == setup
    record, _ = register(setup)
    ke1, c_state = LoginClient.start(PASSWORD, config=FAST)
    ke2, s_state = LoginServer.start(setup, record, ke1, CRED_ID, config=FAST)
    stored = s_state.to_bytes()
    assert len(stored) == 129
    ke3, session, _ = LoginClient.finish(c_state, ke2, config=FAST)
    assert LoginServer.finish(ServerLoginState.from_bytes(stored), ke3) == session
    for bad in (stored[:-1], b"\x02" + stored[1:], b""):
        with pytest.raises(ProtocolError):
            ServerLoginState.from_bytes(bad)
    for bad in (setup.to_bytes()[:-1], b"\x09" + setup.to_bytes()[1:]):
        with pytest.raises(ProtocolError):
            ServerSetup.from_bytes(bad)


def test_reprs_reveal_no_secret(setup: ServerSetup) -> None:
    record, _ = register(setup)
    _, reg_state = RegistrationClient.start(PASSWORD, config=FAST)
    ke1, c_state = LoginClient.start(PASSWORD, config=FAST)
    _, s_state = LoginServer.start(setup, record, ke1, CRED_ID, config=FAST)
    secrets = [setup.oprf_seed, setup.server_private_key, reg_state.blind, c_state.blind,
               c_state.client_secret, s_state.session_key, s_state.expected_client_mac]
    for obj in (setup, reg_state, c_state, s_state):
        text = repr(obj) + str(obj)
        assert "correct horse" not in text and "636f7272656374" not in text
        for secret in secrets:
            assert secret.hex() not in text and repr(secret) not in text


def test_server_setup_rejects_bad_private_keys() -> None:
    order = bytes.fromhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
    seed = bytes(64)
    for bad in (bytes(32), order, b"\xff" * 32, bytes(31)):
        with pytest.raises(ProtocolError):
            ServerSetup.from_parts(seed, bad)
    with pytest.raises(ProtocolError):
        ServerSetup.from_parts(bytes(63), b"\x01" + bytes(31))
    # The generated key pair is consistent.
    fresh = ServerSetup.generate()
    assert pysodium.crypto_scalarmult_ristretto255_base(fresh.server_private_key) == \
        fresh.server_public_key


def test_argon2id_ksf_matches_libsodium() -> None:
    # Two independent Argon2id implementations: one lane is computed by libsodium
    # (it releases the GIL), checked here against libsodium called directly and
    # against pyca/cryptography's (test_ksf_gil.py covers more parameters).
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    ksf = Argon2idKSF(memory_kib=256, iterations=2, parallelism=1)
    msg = bytes(range(64))
    expected = pysodium.crypto_pwhash(64, msg, bytes(16), 2, 256 * 1024,
                                      pysodium.crypto_pwhash_ALG_ARGON2ID13)
    assert ksf.stretch(msg) == expected
    assert Argon2id(salt=bytes(16), length=64, iterations=2, lanes=1,
                    memory_cost=256).derive(msg) == expected
    assert Argon2idKSF(memory_kib=256, iterations=2, parallelism=2).stretch(msg) != expected


def test_bad_arguments_raise_type_or_value_error() -> None:
    with pytest.raises(ValueError):
        Argon2idKSF(memory_kib=8, parallelism=4)
    with pytest.raises(ValueError):
        Argon2idKSF(iterations=0)
    with pytest.raises(TypeError):
        OpaqueConfig(context="text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RegistrationClient.start("password", config=FAST)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LoginClient.start(b"x" * 65536, config=FAST)


def test_default_ksf_is_rfc9106_second_recommendation_with_one_lane() -> None:
    default = OpaqueConfig().ksf
    assert default == Argon2idKSF(memory_kib=65536, iterations=3, parallelism=1)
    assert OpaqueConfig().context == b""


def test_states_are_frozen(setup: ServerSetup) -> None:
    _, state = LoginClient.start(PASSWORD, config=FAST)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.blind = bytes(32)  # type: ignore[misc]


def test_default_ksf_matches_libsodium_crypto_pwhash() -> None:
    # With one lane, any libsodium-based client (crypto_pwhash) computes the same KSF.
    msg = bytes(range(64, 128))
    expected = pysodium.crypto_pwhash(64, msg, bytes(16), 3, 65536 * 1024,
                                      pysodium.crypto_pwhash_ALG_ARGON2ID13)
    assert OpaqueConfig().ksf.stretch(msg) == expected


def test_public_names_exist() -> None:
    import strongroom.opaque as package

    assert package.__all__ and all(hasattr(package, name) for name in package.__all__)


def test_fake_and_real_ke2_do_the_same_group_work(setup: ServerSetup,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Refusing to be an oracle: an unknown account costs the server the same
    # scalar multiplications as a registered one (timing is dominated by them).
    from strongroom.opaque import _group

    record, _ = register(setup)
    ke1, _ = LoginClient.start(PASSWORD, config=FAST)
    counts: dict[str, int] = {}
    for name in ("_scalarmult", "_scalarmult_base", "_invert", "_from_hash"):
        original = getattr(_group, name)

        def counted(*args: bytes, _name: str = name, _original=original) -> bytes:
            counts[_name] = counts.get(_name, 0) + 1
            return _original(*args)

        monkeypatch.setattr(_group, name, counted)
    LoginServer.start(setup, record, ke1, CRED_ID, config=FAST)
    real = dict(counts)
    counts.clear()
    LoginServer.start(setup, None, ke1, CRED_ID, config=FAST)
    assert counts == real and real["_scalarmult"] == 4


def test_randomness_comes_only_from_the_rng_parameter(setup: ServerSetup) -> None:
    import random

    def seeded(seed: int):  # deterministic test rng (never for real use)
        source = random.Random(seed)
        return lambda n: source.randbytes(n)

    record, _ = register(setup)
    runs = []
    for _ in range(2):
        request, reg_state = RegistrationClient.start(PASSWORD, config=FAST, rng=seeded(1))
        response = RegistrationServer.respond(setup, request, CRED_ID, config=FAST)
        reg = RegistrationClient.finish(reg_state, response, config=FAST, rng=seeded(2))
        ke1, _ = LoginClient.start(PASSWORD, config=FAST, rng=seeded(3))
        ke2, _ = LoginServer.start(setup, record, ke1, CRED_ID, config=FAST, rng=seeded(4))
        fake, _ = LoginServer.start(setup, None, ke1, CRED_ID, config=FAST, rng=seeded(5))
        runs.append((request, reg, ke1, ke2, fake))
    assert runs[0] == runs[1]
    assert ServerSetup.generate(seeded(6)) == ServerSetup.generate(seeded(6))
