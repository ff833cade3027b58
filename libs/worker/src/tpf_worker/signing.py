"""HMAC-SHA256 request signing shared by the REST, gRPC and SQS worker protocols (TPF_WIRE §9.4).

The signed string is `METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nhex(sha256(body))`, keyed with the
shared secret; the signature is lower-case hex. Timestamps travel as Java's `Instant.toString`
prints them, and are signed exactly as sent, so the printing and parsing here follow Java.
"""

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from tpf_worker.nonces import MemoryNonceCache, NonceCache

__all__ = [
    "SignatureRejected",
    "Signed",
    "Verifier",
    "java_instant",
    "parse_instant",
    "sign",
    "signature",
]

_NANOS_PER_SECOND: Final = 1_000_000_000

# Instant.parse accepts ISO_INSTANT text: a UTC "Z" (either case) or a numeric offset, and up to
# nine fraction digits.
_INSTANT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})"
    r"(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<off_h>\d{2}):(?P<off_m>\d{2})(?::(?P<off_s>\d{2}))?)"
)


def java_instant(now: datetime | None = None) -> str:
    """`now` (default: the current time, in nanoseconds) as Java's `Instant.toString` prints it.

    Java prints no fraction for a whole second and otherwise 3, 6 or 9 digits, the fewest that
    hold the value; the current time on a Linux JDK has nanoseconds, so it prints 9 digits.
    """
    if now is None:
        epoch_nanos = time.time_ns()
        seconds, nanos = divmod(epoch_nanos, _NANOS_PER_SECOND)
        moment = datetime.fromtimestamp(seconds, UTC)
    else:
        if now.tzinfo is None:
            raise ValueError("java_instant needs an aware datetime")
        moment = now.astimezone(UTC)
        nanos = moment.microsecond * 1000
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        fraction = ""
    elif nanos % 1_000_000 == 0:
        fraction = f".{nanos // 1_000_000:03d}"
    elif nanos % 1000 == 0:
        fraction = f".{nanos // 1000:06d}"
    else:
        fraction = f".{nanos:09d}"
    return f"{text}{fraction}Z"


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant as Java's `Instant.parse` does; raises `ValueError`.

    Accepts up to 9 fraction digits (kept to microseconds, the most a `datetime` holds), a `Z`/`z`
    or a `+hh:mm` offset. Returns an aware UTC datetime.
    """
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise ValueError(f"not an ISO-8601 instant: {text!r}")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    try:
        local = datetime.fromisoformat(
            f"{match['date']}T{match['hour']}:{match['minute']}:{match['second'] or '00'}"
            f".{fraction}"
        )
        if match["utc"]:
            offset = timedelta(0)
        else:
            offset = timedelta(
                hours=int(match["off_h"]),
                minutes=int(match["off_m"]),
                seconds=int(match["off_s"] or 0),
            )
            if match["sign"] == "-":
                offset = -offset
        return local.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except (ValueError, OverflowError) as error:  # day 31 of February, offset out of range
        raise ValueError(f"not an ISO-8601 instant: {text!r} ({error})") from None


def _normalized_path(path: str) -> str:
    if not path.strip():
        return "/"
    return path if path.startswith("/") else f"/{path}"


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The lower-case hex HMAC-SHA256 TPF expects for one request."""
    body_hash = hashlib.sha256(body).hexdigest()
    message = f"{method}\n{_normalized_path(path)}\n{timestamp}\n{nonce}\n{body_hash}"
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signed:
    """The three values a signed request carries (headers, message fields or body fields)."""

    timestamp: str
    nonce: str
    signature: str


def sign(secret: str, method: str, path: str, body: bytes) -> Signed:
    """Sign a request made now, with a fresh random nonce."""
    timestamp = java_instant()
    nonce = str(uuid.uuid4())
    return Signed(timestamp, nonce, signature(secret, method, path, timestamp, nonce, body))


class SignatureRejected(Exception):
    """A request failed verification; `reason` is one of
    "missing", "timestamp", "stale", "signature" or "replayed"."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"request signature rejected: {reason}")
        self.reason = reason


class Verifier:
    """Checks signed requests in TPF's order, and refuses a nonce seen within the tolerance.

    Nonces go to `nonces` (default: this process's memory, bounded by time, not by a count; a
    `RedisNonceCache` shares them between replicas). Each is kept until the request it came with
    would be refused as stale anyway: its timestamp plus the tolerance.
    """

    def __init__(
        self,
        secret: str,
        *,
        tolerance: timedelta = timedelta(minutes=2),
        nonces: NonceCache | None = None,
    ) -> None:
        self._secret = secret
        self._tolerance = tolerance
        self._nonces: NonceCache = nonces if nonces is not None else MemoryNonceCache()

    async def verify(
        self,
        method: str,
        path: str,
        timestamp: str | None,
        nonce: str | None,
        signature: str | None,
        body: bytes,
        *,
        now: datetime | None = None,
        record_nonce: bool = True,
    ) -> None:
        """Raise `SignatureRejected` unless the request is authentic, fresh and not replayed.

        With `record_nonce=False` the nonce is checked but not remembered; the caller then calls
        `record_nonce` itself (TPF's SQS worker records it only after replying).
        """
        if not timestamp or not nonce or not signature:
            raise SignatureRejected("missing")
        if not timestamp.strip() or not nonce.strip() or not signature.strip():
            raise SignatureRejected("missing")
        try:
            signed_at = parse_instant(timestamp)
        except ValueError:
            raise SignatureRejected("timestamp") from None
        current = now or datetime.now(UTC)
        if abs(current - signed_at) > self._tolerance:
            raise SignatureRejected("stale")
        expected = _signature(self._secret, method, path, timestamp, nonce, body)
        if not hmac.compare_digest(expected.encode("utf-8"), signature.encode("utf-8")):
            raise SignatureRejected("signature")
        if record_nonce:
            if not await self._nonces.remember(nonce, signed_at + self._tolerance, current):
                raise SignatureRejected("replayed")
        elif await self._nonces.seen(nonce, current):
            raise SignatureRejected("replayed")

    async def record_nonce(
        self, nonce: str, timestamp: str, *, now: datetime | None = None
    ) -> None:
        """Remember a nonce checked earlier with `record_nonce=False`."""
        until = parse_instant(timestamp) + self._tolerance
        await self._nonces.remember(nonce, until, now or datetime.now(UTC))


# `verify` has a parameter named `signature`; keep a second name for the module function.
_signature = signature
