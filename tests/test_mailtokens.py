"""Mail link tokens: they verify for exactly the purpose, subscription and address they were made for."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from papertide.mailtokens import check_token, make_token, token_id

SECRET = b"k" * 32
OTHER_SECRET = b"j" * 32


def test_round_trip_is_url_safe_and_names_its_subscription():
    token = make_token(SECRET, "unsubscribe", 42, "alice@example.org")
    assert quote(token, safe="") == token  # nothing to escape in a path or query
    assert token.startswith("42.") and len(token) == len("42.") + 43
    assert token_id(token) == 42
    assert check_token(SECRET, "unsubscribe", token, "alice@example.org")


def test_the_address_is_compared_case_insensitively_and_trimmed():
    token = make_token(SECRET, "confirm", 7, "Alice@Example.ORG")
    assert check_token(SECRET, "confirm", token, "alice@example.org")
    assert check_token(SECRET, "confirm", token, " ALICE@example.org ")


@pytest.mark.parametrize("purpose, email, secret", [
    ("confirm", "alice@example.org", SECRET),  # another purpose
    ("unsubscribe", "bob@example.org", SECRET),  # another address
    ("unsubscribe", "alice@example.org.evil", SECRET),  # an address that merely starts the same
    ("unsubscribe", "alice@example.org", OTHER_SECRET),  # another installation
])
def test_a_token_never_verifies_for_anything_else(purpose, email, secret):
    token = make_token(SECRET, "unsubscribe", 42, "alice@example.org")
    assert not check_token(secret, purpose, token, email)


def test_the_id_cannot_be_swapped_and_the_mac_cannot_be_edited():
    token = make_token(SECRET, "unsubscribe", 42, "alice@example.org")
    mac = token.split(".", 1)[1]
    assert not check_token(SECRET, "unsubscribe", f"43.{mac}", "alice@example.org")
    for i in (0, 20, 42):
        flipped = mac[:i] + ("A" if mac[i] != "A" else "B") + mac[i + 1:]
        assert not check_token(SECRET, "unsubscribe", f"42.{flipped}", "alice@example.org")


def test_only_the_canonical_spelling_of_the_last_character_is_valid():
    # 43 base64 characters carry 258 bits for a 256-bit MAC: the last character's two spare
    # bits could be set without changing the decoded bytes. Such twins must not verify.
    token = make_token(SECRET, "unsubscribe", 42, "alice@example.org")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twins = [token[:-1] + alphabet[(last & ~3) | spare] for spare in range(4) if (last & ~3) | spare != last]
    assert len(twins) == 3
    assert not any(check_token(SECRET, "unsubscribe", t, "alice@example.org") for t in twins)


@pytest.mark.parametrize("bad", [
    "", "42", "42.", ".abc", "0." + "A" * 43, "-1." + "A" * 43, "42." + "A" * 42, "42." + "A" * 44,
    "42." + "A" * 42 + "=", "42." + "A" * 42 + "+", "42." + "A" * 43 + "\n", " 42." + "A" * 43,
    "4.2." + "A" * 43, "9" * 20 + "." + "A" * 43,
])
def test_malformed_tokens_are_a_value_error_for_token_id_and_simply_invalid_for_check(bad):
    with pytest.raises(ValueError, match="malformed token"):
        token_id(bad)
    assert check_token(SECRET, "unsubscribe", bad, "alice@example.org") is False


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="purpose must be one of confirm, unsubscribe"):
        make_token(SECRET, "delete", 1, "a@example.org")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        make_token(b"short", "confirm", 1, "a@example.org")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        check_token("a string secret", "confirm", "1." + "A" * 43, "a@example.org")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive whole number"):
        make_token(SECRET, "confirm", 0, "a@example.org")
    with pytest.raises(ValueError, match="not an email address"):
        make_token(SECRET, "confirm", 1, "nobody")


addresses = st.builds(lambda user, host: f"{user}@{host}.org", st.from_regex(r"[A-Za-z0-9._+-]{1,12}", fullmatch=True),
                      st.sampled_from(["example", "Example", "exämple", "x"]))


@settings(max_examples=60, deadline=None)
@given(sid=st.integers(1, 10**12), a=addresses, b=addresses, purpose=st.sampled_from(["confirm", "unsubscribe"]))
def test_property_tokens_bind_address_and_purpose(sid, a, b, purpose):
    token = make_token(SECRET, purpose, sid, a)
    assert token_id(token) == sid
    assert check_token(SECRET, purpose, token, a)
    other = "unsubscribe" if purpose == "confirm" else "confirm"
    assert not check_token(SECRET, other, token, a)
    assert check_token(SECRET, purpose, token, b) == (a.strip().lower() == b.strip().lower())
