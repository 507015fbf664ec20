import pytest
from django.core.exceptions import ImproperlyConfigured

from youthhub import crypto

K1 = crypto.generate_master_key_entry("k1")
K2 = crypto.generate_master_key_entry("k2")


def test_keyring_first_entry_is_current():
    ring = crypto.Keyring.parse(f"{K2},{K1}")
    assert ring.current_id == "k2"
    assert set(ring.keys) == {"k1", "k2"}


@pytest.mark.parametrize(
    "spec",
    ["", "k1", "k1:not base64!", "k1:" + "QUJD", f"{K1},{K1}", "bad id:QUJD"],
)
def test_keyring_rejects_bad_specs(spec):
    with pytest.raises(ImproperlyConfigured):
        crypto.Keyring.parse(spec)


def test_text_round_trips_and_is_bound_to_its_row():
    key = crypto.new_data_key()
    blob = crypto.seal_text(key, "hei på deg 🦊", aad="message:c1:1")
    assert b"hei" not in blob
    assert crypto.open_text(key, blob, aad="message:c1:1") == "hei på deg 🦊"
    with pytest.raises(crypto.DecryptionError):
        crypto.open_text(key, blob, aad="message:c1:2")  # copied onto another message
    with pytest.raises(crypto.DecryptionError):
        crypto.open_text(crypto.new_data_key(), blob, aad="message:c1:1")


def test_rotation_new_writes_use_newest_and_old_keys_still_decrypt(settings):
    settings.YOUTHHUB_DATA_KEYS = K1
    data_key = crypto.new_data_key()
    old_id, old_wrapped = crypto.wrap_data_key(data_key, context="conv-a")
    assert old_id == "k1"

    settings.YOUTHHUB_DATA_KEYS = f"{K2},{K1}"
    assert crypto.unwrap_data_key(old_id, old_wrapped, context="conv-a") == data_key
    new_id, _ = crypto.wrap_data_key(data_key, context="conv-a")
    assert new_id == "k2"

    settings.YOUTHHUB_DATA_KEYS = K2  # k1 retired: what it wrapped is unreadable
    with pytest.raises(crypto.DecryptionError):
        crypto.unwrap_data_key(old_id, old_wrapped, context="conv-a")
