"""HMAC signing and verification as TPF's workers do it (TPF_WIRE §9.4)."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from tpf_worker.nonces import MemoryNonceCache
from tpf_worker.signing import (
    SignatureRejected,
    Verifier,
    java_instant,
    parse_instant,
    sign,
    signature,
)

_NOW = datetime(2026, 8, 22, 17, 48, 23, 123456, tzinfo=UTC)
_PATH = "/pipeline/worker/transitions/execute"


def test_signature_is_lower_hex_hmac_of_the_canonical_string() -> None:
    body = b'{"a":1}'
    canonical = f"POST\n{_PATH}\n2026-08-22T17:48:23Z\nn-1\n{hashlib.sha256(body).hexdigest()}"
    expected = hmac.new(b"s3cret", canonical.encode(), hashlib.sha256).hexdigest()
    assert signature("s3cret", "POST", _PATH, "2026-08-22T17:48:23Z", "n-1", body) == expected
    assert expected == expected.lower()


def test_path_gets_a_leading_slash_and_blank_path_is_root() -> None:
    args = ("2026-08-22T17:48:23Z", "n", b"")
    assert signature("k", "GET", "a/b", *args) == signature("k", "GET", "/a/b", *args)
    assert signature("k", "GET", "", *args) == signature("k", "GET", "/", *args)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 8, 22, 17, 48, 23, tzinfo=UTC), "2026-08-22T17:48:23Z"),
        (datetime(2026, 8, 22, 17, 48, 23, 120000, tzinfo=UTC), "2026-08-22T17:48:23.120Z"),
        (_NOW, "2026-08-22T17:48:23.123456Z"),
        (_NOW.astimezone(), "2026-08-22T17:48:23.123456Z"),
    ],
)
def test_java_instant_prints_like_instant_to_string(moment: datetime, text: str) -> None:
    assert java_instant(moment) == text


def test_java_instant_of_now_has_0_3_6_or_9_digits_and_parses_back() -> None:
    text = java_instant()
    assert text.endswith("Z")
    fraction = text[len("2026-08-22T17:48:23") : -1]
    assert fraction == "" or len(fraction) - 1 in (3, 6, 9)
    assert abs(parse_instant(text) - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-08-22T17:48:26.985157510Z", datetime(2026, 8, 22, 17, 48, 26, 985157, tzinfo=UTC)),
        ("2026-08-22T17:48:26.9z", datetime(2026, 8, 22, 17, 48, 26, 900000, tzinfo=UTC)),
        ("2026-08-22T19:48:26+02:00", datetime(2026, 8, 22, 17, 48, 26, tzinfo=UTC)),
        ("2026-08-22T15:48:26.5-02:00", datetime(2026, 8, 22, 17, 48, 26, 500000, tzinfo=UTC)),
    ],
)
def test_parse_instant_accepts_nanoseconds_offsets_and_lower_z(
    text: str, expected: datetime
) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2026-08-22", "2026-08-22T17:48:26", "2026-08-22T17:48:26.1234567890Z",
     "2026-02-30T00:00:00Z", "yesterday"],
)  # fmt: skip
def test_parse_instant_refuses_what_instant_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)


def _signed_at(moment: datetime, nonce: str = "n-1", body: bytes = b"{}") -> tuple[str, str, str]:
    timestamp = java_instant(moment)
    return timestamp, nonce, signature("k", "POST", _PATH, timestamp, nonce, body)


async def _reason(verifier: Verifier, *values: str | None, now: datetime = _NOW) -> str:
    with pytest.raises(SignatureRejected) as raised:
        await verifier.verify("POST", _PATH, values[0], values[1], values[2], b"{}", now=now)
    return raised.value.reason


async def test_a_fresh_signed_request_passes_once_and_replay_is_refused() -> None:
    verifier = Verifier("k")
    values = _signed_at(_NOW)
    await verifier.verify("POST", _PATH, *values, b"{}", now=_NOW)
    assert await _reason(verifier, *values) == "replayed"


async def test_sign_produces_what_the_verifier_accepts() -> None:
    signed = sign("k", "GET", "/x", b"")
    await Verifier("k").verify("GET", "/x", signed.timestamp, signed.nonce, signed.signature, b"")


@pytest.mark.parametrize("missing", [0, 1, 2])
async def test_missing_or_blank_values_are_refused(missing: int) -> None:
    values: list[str | None] = list(_signed_at(_NOW))
    values[missing] = None
    assert await _reason(Verifier("k"), *values) == "missing"
    values[missing] = " "
    assert await _reason(Verifier("k"), *values) == "missing"


async def test_unparsable_timestamp_is_refused() -> None:
    _timestamp, nonce, sig = _signed_at(_NOW)
    assert await _reason(Verifier("k"), "22/08/2026", nonce, sig) == "timestamp"


async def test_timestamps_outside_tolerance_either_way_are_stale() -> None:
    verifier = Verifier("k", tolerance=timedelta(minutes=2))
    assert await _reason(verifier, *_signed_at(_NOW - timedelta(minutes=2, seconds=1))) == "stale"
    assert await _reason(verifier, *_signed_at(_NOW + timedelta(minutes=2, seconds=1))) == "stale"
    await verifier.verify("POST", _PATH, *_signed_at(_NOW - timedelta(minutes=2)), b"{}", now=_NOW)


async def test_wrong_secret_body_or_upper_case_hex_is_refused() -> None:
    timestamp, nonce, sig = _signed_at(_NOW)
    assert await _reason(Verifier("other"), timestamp, nonce, sig) == "signature"
    assert await _reason(Verifier("k"), timestamp, nonce, sig.upper()) == "signature"
    with pytest.raises(SignatureRejected, match="signature"):
        await Verifier("k").verify("POST", _PATH, timestamp, nonce, sig, b"{ }", now=_NOW)
    with pytest.raises(SignatureRejected, match="signature"):
        await Verifier("k").verify("POST", "/other", timestamp, nonce, sig, b"{}", now=_NOW)


async def test_unrecorded_nonce_can_be_recorded_later() -> None:
    verifier = Verifier("k")
    values = _signed_at(_NOW)
    await verifier.verify("POST", _PATH, *values, b"{}", now=_NOW, record_nonce=False)
    await verifier.verify("POST", _PATH, *values, b"{}", now=_NOW, record_nonce=False)
    await verifier.record_nonce(values[1], values[0], now=_NOW)
    assert await _reason(verifier, *values) == "replayed"


async def test_nonces_are_kept_for_the_whole_tolerance_at_any_rate() -> None:
    """No count bound: 20,000 requests within the window are all remembered."""
    verifier = Verifier("k")
    nonces = [f"n-{n}" for n in range(20_000)]
    for nonce in nonces:
        await verifier.verify("POST", _PATH, *_signed_at(_NOW, nonce), b"{}", now=_NOW)
    almost = _NOW + timedelta(minutes=2)
    assert await _reason(verifier, *_signed_at(_NOW, nonces[0]), now=almost) == "replayed"


async def test_a_nonce_is_forgotten_once_its_request_would_be_stale() -> None:
    tolerance = timedelta(minutes=2)
    cache = MemoryNonceCache()
    verifier = Verifier("k", tolerance=tolerance, nonces=cache)
    signed = _signed_at(_NOW, "old")
    await verifier.verify("POST", _PATH, *signed, b"{}", now=_NOW)
    # Still inside the window: a replay, even just before the end.
    assert await _reason(verifier, *signed, now=_NOW + tolerance) == "replayed"
    # Past it, the request itself is stale; the entry goes at the next check.
    assert await _reason(verifier, *signed, now=_NOW + tolerance * 2) == "stale"
    later = _NOW + tolerance * 2
    await verifier.verify("POST", _PATH, *_signed_at(later, "new"), b"{}", now=later)
    assert len(cache) == 1
