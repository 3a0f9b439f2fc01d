"""The guess counter state machine, with exact output lists."""

from __future__ import annotations

import pytest

from strongroom.vault.counter import Counter, Event, Out, State, absent, step

E, O, S = Event, Out, State


def run(events: list[Event], limit: int = 3) -> list[tuple[str, int, list[str]]]:
    """Apply ``events`` from ABSENT; record (state, used, outputs) after each."""
    c, log = absent(limit), []
    for ev in events:
        c, outs = step(c, ev, limit=limit)
        log.append((c.state.value, c.used, [o.value for o in outs]))
    return log


def test_register_then_wrong_guesses_to_the_lock() -> None:
    assert run([E.REGISTER, E.LOGIN_START, E.LOGIN_START, E.LOGIN_START, E.LOGIN_START]) == [
        ("active", 0, ["store_record", "drop_sessions", "commit"]),
        ("active", 1, ["count_guess", "commit", "send_ke2"]),
        ("active", 2, ["count_guess", "commit", "send_ke2"]),
        ("locked", 3, ["count_guess", "erase_record", "drop_other_sessions", "commit", "send_ke2"]),
        ("locked", 3, ["answer_locked"]),
    ]


def test_commit_always_precedes_ke2() -> None:
    for _state, _used, outs in run([E.REGISTER] + [E.LOGIN_START] * 4):
        if "send_ke2" in outs:
            assert outs.index("commit") < outs.index("send_ke2")


def test_success_resets_and_last_attempt_success_restores() -> None:
    assert run([E.REGISTER, E.LOGIN_START, E.KE3_VALID, E.LOGIN_START, E.LOGIN_START,
                E.LOGIN_START, E.KE3_VALID]) == [
        ("active", 0, ["store_record", "drop_sessions", "commit"]),
        ("active", 1, ["count_guess", "commit", "send_ke2"]),
        ("active", 0, ["consume_session", "reset_counter", "commit", "release_key"]),
        ("active", 1, ["count_guess", "commit", "send_ke2"]),
        ("active", 2, ["count_guess", "commit", "send_ke2"]),
        ("locked", 3, ["count_guess", "erase_record", "drop_other_sessions", "commit", "send_ke2"]),
        ("active", 0, ["consume_session", "restore_record", "commit", "release_key"]),
    ]


def test_invalid_ke3_and_missing_session_change_nothing() -> None:
    assert run([E.REGISTER, E.LOGIN_START, E.KE3_INVALID, E.KE3_NO_SESSION]) == [
        ("active", 0, ["store_record", "drop_sessions", "commit"]),
        ("active", 1, ["count_guess", "commit", "send_ke2"]),
        ("active", 1, ["consume_session", "commit", "answer_invalid"]),
        ("active", 1, ["reject_session"]),
    ]


def test_unknown_account_counts_like_a_real_one() -> None:
    assert run([E.LOGIN_START, E.LOGIN_START, E.LOGIN_START, E.LOGIN_START]) == [
        ("phantom", 1, ["count_guess", "commit", "send_fake_ke2"]),
        ("phantom", 2, ["count_guess", "commit", "send_fake_ke2"]),
        ("locked", 3, ["count_guess", "erase_record", "drop_other_sessions", "commit",
                       "send_fake_ke2"]),
        ("locked", 3, ["answer_locked"]),
    ]


def test_attempts_left_match_for_real_and_unknown() -> None:
    real = run([E.REGISTER] + [E.LOGIN_START] * 3)[1:]
    fake = run([E.LOGIN_START] * 3)
    assert [u for _, u, _ in real] == [u for _, u, _ in fake]


def test_delete_and_reregister_from_locked() -> None:
    assert run([E.REGISTER, E.LOGIN_START, E.LOGIN_START, E.LOGIN_START, E.DELETE, E.REGISTER]) [-2:] == [
        ("absent", 0, ["erase_record", "drop_sessions", "commit"]),
        ("active", 0, ["store_record", "drop_sessions", "commit"]),
    ]


def test_valid_ke3_without_record_is_impossible() -> None:
    with pytest.raises(ValueError):
        step(Counter(S.PHANTOM, 1, 3), E.KE3_VALID, limit=3)


def test_attempts_left() -> None:
    assert Counter(S.ACTIVE, 4, 10).attempts_left == 6
    assert Counter(S.LOCKED, 10, 10).attempts_left == 0


def test_the_dot_file_names_every_state_and_event() -> None:
    from pathlib import Path

    dot = (Path(__file__).parents[2] / "docs/state-machines/guess-counter.dot").read_text()
    for name in [s.name for s in S] + [e.value for e in E]:
        assert name in dot, name
