"""DKIM signatures (RFC 6376, relaxed/simple) on every outgoing message; optionally a second
Ed25519 signature (RFC 8463) beside the RSA one.

dkimpy canonicalises the headers and body and hashes them; the private-key operation itself runs in
OpenSSL through `cryptography`, because dkimpy's pure-Python RSA (Python `pow`) takes ~40 ms a message
on this machine, twenty times the 2 ms budget. Receivers (and the tests) verify with dkimpy.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim import RE_BTAG, fold, hash_headers, rfc822_parse  # type: ignore[attr-defined]
from dkim.canonicalization import CanonicalizationPolicy

from service.config import Settings

# Signed once each, plus a second time when present so that nobody can add another copy above the
# signed one (a copy that mail clients would show). Absent ones are signed as absent, for the same reason.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"cc",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-id",
    b"auto-submitted",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)
_POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/simple")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DkimConfigError(ValueError):
    """A DKIM setting paperboy cannot use; the message names the setting (never the key)."""


@dataclass(frozen=True)
class DkimKey:
    """One signing identity: selector, domain and private key."""

    selector: str
    domain: str
    key: PrivateKey

    @property
    def algorithm(self) -> bytes:
        return b"ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else b"rsa-sha256"

    def public_value(self) -> str:
        """The p= value of the DNS record."""
        public = self.key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            raw = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return base64.b64encode(raw).decode("ascii")

    def txt_value(self) -> str:
        kind = "ed25519" if self.algorithm == b"ed25519-sha256" else "rsa"
        return f"v=DKIM1; k={kind}; p={self.public_value()}"

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The zone-file line to publish; TXT strings are cut at 255 characters (RFC 1035)."""
        value = self.txt_value()
        chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        return f"{self.record_name}. IN TXT ( {chunks} )"

    def signature(self, headers: list[tuple[bytes, bytes]], body: bytes, *, now: int) -> bytes:
        """The DKIM-Signature header line (CRLF-terminated) for a parsed message."""
        present = {name.lower() for name, _ in headers}
        include = list(SIGNED_HEADERS) + [name for name in SIGNED_HEADERS if name in present]
        bodyhash = base64.b64encode(hashlib.sha256(_POLICY.canonicalize_body(body)).digest())
        fields = [
            (b"v", b"1"),
            (b"a", self.algorithm),
            (b"c", b"relaxed/simple"),
            (b"d", self.domain.encode("ascii")),
            (b"s", self.selector.encode("ascii")),
            (b"t", str(now).encode("ascii")),
            (b"h", b" : ".join(include)),  # spaces: folding may only break between names
            (b"bh", bodyhash),
            (b"b", b""),
        ]
        unsigned = fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(b"DKIM-Signature"))
        unsigned = RE_BTAG.sub(b"\\1", unsigned)
        hasher = hashlib.sha256()
        canonical = _POLICY.canonicalize_headers(headers)
        hash_headers(hasher, _POLICY, canonical, include, (b"DKIM-Signature", b" " + unsigned), dict(fields))
        fields[-1] = (b"b", base64.b64encode(self._sign_digest(hasher.digest())))
        value = fold(b"; ".join(b"=".join(f) for f in fields) + b"\r\n", namelen=len(b"DKIM-Signature"))
        return b"DKIM-Signature: " + value

    def _sign_digest(self, digest: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(digest)  # RFC 8463: Ed25519 over the SHA-256 of the header data
        return self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


class DkimSigner:
    """Prepends one DKIM-Signature per key; the message must be final (no header changes after)."""

    def __init__(self, keys: list[DkimKey]) -> None:
        self.keys = keys

    def sign(self, message: bytes, *, now: int | None = None) -> bytes:
        # Only the header block goes through dkimpy's line parser: splitting the whole body into
        # lines took as long as the RSA signature.
        end = message.find(b"\r\n\r\n")
        if end < 0:
            headers, body = rfc822_parse(message)
        else:
            headers, _ = rfc822_parse(message[: end + 2] + b"\r\n")
            body = message[end + 4 :]
        stamp = int(time.time()) if now is None else now
        lines = [key.signature(headers, body, now=stamp) for key in self.keys]
        return b"".join(lines) + message


def read_private_key(path: Path, setting: str) -> PrivateKey:
    """A PEM private key from a file; DkimConfigError names the setting and file, never the contents."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DkimConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimConfigError(f"{setting}: {path} is not an unencrypted PEM private key") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise DkimConfigError(f"{setting}: {path} is a {key.key_size}-bit RSA key; use 2048 bits")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise DkimConfigError(f"{setting}: {path} holds a {type(key).__name__}, not an RSA or Ed25519 key")


def signer_for(settings: Settings) -> DkimSigner | None:
    """The signer the settings describe, None when DKIM is not configured (DkimConfigError if half)."""
    if settings.dkim_private_key_file is None and settings.dkim_ed25519_key_file is None:
        return None
    if not settings.dkim_domain:
        raise DkimConfigError("DKIM_DOMAIN must be set when a DKIM key file is")
    keys: list[DkimKey] = []
    if settings.dkim_private_key_file is not None:
        key = read_private_key(settings.dkim_private_key_file, "DKIM_PRIVATE_KEY_FILE")
        keys.append(DkimKey(settings.dkim_selector, settings.dkim_domain, key))
    if settings.dkim_ed25519_key_file is not None:
        if not settings.dkim_ed25519_selector:
            raise DkimConfigError("DKIM_ED25519_SELECTOR must be set when DKIM_ED25519_KEY_FILE is")
        key = read_private_key(settings.dkim_ed25519_key_file, "DKIM_ED25519_KEY_FILE")
        keys.append(DkimKey(settings.dkim_ed25519_selector, settings.dkim_domain, key))
    return DkimSigner(keys)


def generate_key(kind: str = "rsa") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"key type must be rsa or ed25519, not {kind!r}")


def write_private_key(key: PrivateKey, path: Path) -> None:
    """PKCS#8 PEM, readable by its owner only (created 0600, never overwritten)."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as handle:  # "x": an existing key is never replaced by accident
        path.chmod(0o600)
        handle.write(data)
