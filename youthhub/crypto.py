"""Encryption at rest: AES-GCM envelope encryption with rotatable master keys.

Each conversation (later: each handover) gets its own random 256-bit *data key*. The data key
is stored only *wrapped* (AES-GCM-encrypted) under a *master key* from YOUTHHUB_DATA_KEYS,
together with the master key's id. Content is sealed with the data key. Consequences:
- rotating the master key re-wraps small data keys, never re-encrypts content;
- deleting a wrapped data key makes that conversation's content unreadable for good
  (this is how retention deletes, even from backups taken later);
- the associated data binds every ciphertext to its row (a body copied onto another
  message or conversation does not decrypt).
"""

import base64
import functools
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

VERSION = b"\x01"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The ciphertext is damaged, bound to another row, or its key is gone."""


@dataclass(frozen=True)
class Keyring:
    current_id: str
    keys: dict[str, bytes]

    @classmethod
    def parse(cls, spec: str) -> "Keyring":
        """Parse "id:base64key,id:base64key"; the first entry is the current key."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id or len(key_id) > 16 or not key_id.isalnum():
                raise ImproperlyConfigured(
                    "YOUTHHUB_DATA_KEYS entries look like 'k1:<base64 of 32 bytes>'"
                )
            try:
                raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except ValueError:
                raise ImproperlyConfigured(f"data key {key_id!r} is not base64") from None
            if len(raw) != 32:
                raise ImproperlyConfigured(f"data key {key_id!r} must be 32 bytes")
            if key_id in keys:
                raise ImproperlyConfigured(f"data key id {key_id!r} appears twice")
            keys[key_id] = raw
            order.append(key_id)
        if not order:
            raise ImproperlyConfigured("YOUTHHUB_DATA_KEYS holds no key")
        return cls(current_id=order[0], keys=keys)


def generate_master_key_entry(key_id: str) -> str:
    return f"{key_id}:" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


@functools.cache
def keyring() -> Keyring:
    return Keyring.parse(settings.YOUTHHUB_DATA_KEYS)


@receiver(setting_changed)
def _reset_keyring(*, setting, **kwargs):
    if setting == "YOUTHHUB_DATA_KEYS":
        keyring.cache_clear()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    blob = bytes(blob)
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != VERSION:
        raise DecryptionError("unknown ciphertext format")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise DecryptionError("ciphertext does not verify") from None


def wrap_data_key(data_key: bytes, *, context: str) -> tuple[str, bytes]:
    """Wrap under the current master key; returns (master key id, wrapped key)."""
    ring = keyring()
    aad = f"datakey:{context}".encode()
    return ring.current_id, _seal(ring.keys[ring.current_id], data_key, aad)


def unwrap_data_key(key_id: str, wrapped: bytes, *, context: str) -> bytes:
    master = keyring().keys.get(key_id)
    if master is None:
        raise DecryptionError(f"master key {key_id!r} is not in YOUTHHUB_DATA_KEYS")
    return _open(master, wrapped, f"datakey:{context}".encode())


def seal_text(data_key: bytes, text: str, *, aad: str) -> bytes:
    return _seal(data_key, text.encode("utf-8"), aad.encode())


def open_text(data_key: bytes, blob: bytes, *, aad: str) -> str:
    return _open(data_key, blob, aad.encode()).decode("utf-8")
