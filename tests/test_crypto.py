"""Secrets at rest: Fernet keys from settings, key rotation, the encrypted field."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.exceptions import ImproperlyConfigured, ValidationError

from wagtail_bookings_vc import crypto
from wagtail_bookings_vc.crypto import (
    DecryptionError,
    EncryptedJSONField,
    check_encryption_keys,
    decrypt_json,
    derive_key,
    encrypt_json,
    generate_key,
    rotate,
    uses_derived_key,
)

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
TOKENS = {"access_token": "ya29.a0Af", "refresh_token": "1//0g-rt", "expires_at": 1900000000.5}


@pytest.fixture
def keys(settings):
    def use(*values, **extra):
        settings.WAGTAIL_BOOKINGS_VC = {"ENCRYPTION_KEYS": list(values), **extra}

    return use


def test_round_trip_and_no_plain_text_in_the_ciphertext(keys):
    keys(NEW_KEY)
    token = encrypt_json(TOKENS)
    assert isinstance(token, str)
    assert "ya29" not in token and "refresh" not in token
    assert decrypt_json(token) == TOKENS
    assert encrypt_json(TOKENS) != token  # a fresh IV every time


def test_only_dicts_of_json_values_are_encrypted(keys):
    keys(NEW_KEY)
    with pytest.raises(TypeError):
        encrypt_json(["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encrypt_json({"when": object()})


def test_a_value_no_key_fits_raises_a_clear_error(keys):
    keys(OLD_KEY)
    token = encrypt_json(TOKENS)
    keys(NEW_KEY)
    with pytest.raises(DecryptionError, match="None of the encryption keys"):
        decrypt_json(token)


def test_a_changed_ciphertext_is_refused(keys):
    keys(NEW_KEY)
    token = encrypt_json(TOKENS)
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(DecryptionError):
        decrypt_json(tampered)
    with pytest.raises(DecryptionError):
        decrypt_json("not a token")


def test_key_rotation(keys):
    keys(OLD_KEY)
    token = encrypt_json(TOKENS)

    # A new key goes first; the old one stays so existing values are still read.
    keys(NEW_KEY, OLD_KEY)
    assert decrypt_json(token) == TOKENS
    rotated = rotate(token)
    assert rotated != token
    assert decrypt_json(rotated) == TOKENS
    # New values use the new key too.
    fresh = encrypt_json({"a": 1})

    # Once rotated, the old key can go.
    keys(NEW_KEY)
    assert decrypt_json(rotated) == TOKENS
    assert decrypt_json(fresh) == {"a": 1}
    with pytest.raises(DecryptionError):
        decrypt_json(token)
    keys(OLD_KEY)
    with pytest.raises(DecryptionError):
        decrypt_json(rotated)


def test_rotate_refuses_a_value_no_key_fits(keys):
    keys(OLD_KEY)
    token = encrypt_json(TOKENS)
    keys(NEW_KEY)
    with pytest.raises(DecryptionError):
        rotate(token)


def test_without_keys_one_is_derived_from_secret_key(settings):
    settings.WAGTAIL_BOOKINGS_VC = {}
    settings.SECRET_KEY = "first-secret-key-for-tests"
    assert uses_derived_key()
    token = encrypt_json(TOKENS)
    assert decrypt_json(token) == TOKENS
    assert derive_key("first-secret-key-for-tests") == derive_key("first-secret-key-for-tests")
    assert derive_key("first-secret-key-for-tests") != derive_key("other")
    Fernet(derive_key("x"))  # a valid Fernet key

    # Django's own key rotation keeps old values readable...
    settings.SECRET_KEY = "second-secret-key-for-tests"
    settings.SECRET_KEY_FALLBACKS = ["first-secret-key-for-tests"]
    assert decrypt_json(token) == TOKENS
    # ...and without the fallback they are lost.
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(DecryptionError):
        decrypt_json(token)


@pytest.mark.parametrize(
    "value",
    [["not-a-key"], [NEW_KEY, "c2hvcnQ="], NEW_KEY, "", None],
)
def test_bad_keys_are_refused_without_showing_them(keys, settings, value):
    settings.WAGTAIL_BOOKINGS_VC = {"ENCRYPTION_KEYS": value}
    if value in ("", None):
        assert uses_derived_key()  # empty means "not set"
        return
    with pytest.raises(ImproperlyConfigured) as caught:
        encrypt_json(TOKENS)
    assert NEW_KEY not in str(caught.value)
    assert "not-a-key" not in str(caught.value)
    [error] = check_encryption_keys()
    assert error.id == "wagtail_bookings_vc.E101"
    assert error.level == checks.ERROR


def test_system_check_recommends_explicit_keys(keys, settings):
    settings.WAGTAIL_BOOKINGS_VC = {}
    [warning] = check_encryption_keys()
    assert warning.id == "wagtail_bookings_vc.W101"
    assert warning.level == checks.WARNING
    assert "ENCRYPTION_KEYS" in warning.hint
    keys(NEW_KEY)
    assert check_encryption_keys() == []


def test_system_check_is_registered():
    assert check_encryption_keys in checks.registry.registry.get_checks()


def test_generate_key_gives_a_usable_key(keys):
    keys(generate_key())
    assert decrypt_json(encrypt_json({"a": 1})) == {"a": 1}


# The model field ----------------------------------------------------------------------


class Row:
    """Stands in for a model instance (the field reads ``obj.<attname>``)."""

    def __init__(self, credentials):
        self.credentials = credentials


@pytest.fixture
def field(keys):
    keys(NEW_KEY)
    field = EncryptedJSONField(null=True)
    field.set_attributes_from_name("credentials")
    return field


def test_field_encrypts_on_the_way_in_and_decrypts_on_the_way_out(field):
    stored = field.get_prep_value(TOKENS)
    assert "ya29" not in stored
    assert field.from_db_value(stored, None, None) == TOKENS
    assert field.get_prep_value(None) is None
    assert field.from_db_value(None, None, None) is None
    assert field.from_db_value("", None, None) == {}


def test_field_to_python_accepts_dicts_and_ciphertext(field):
    assert field.to_python(TOKENS) is TOKENS
    assert field.to_python(encrypt_json(TOKENS)) == TOKENS
    assert field.to_python(None) is None
    with pytest.raises(ValidationError):
        field.to_python("garbage")
    with pytest.raises(ValidationError):
        field.to_python(42)


def test_field_serialises_ciphertext_only(field):
    text = field.value_to_string(Row(TOKENS))
    assert "ya29" not in text
    assert decrypt_json(text) == TOKENS


def test_field_deconstructs_without_keys(field):
    name, path, args, kwargs = field.deconstruct()
    assert path == "wagtail_bookings_vc.crypto.EncryptedJSONField"
    assert (name, args, kwargs) == ("credentials", [], {"null": True})
    assert NEW_KEY not in repr(field.deconstruct())


def test_field_has_no_form_field_and_no_lookups_but_isnull(field):
    assert field.formfield() is None
    assert field.get_lookup("isnull") is not None
    assert field.get_lookup("exact") is None
    assert field.get_lookup("icontains") is None
    assert field.get_transform("access_token") is None


def test_keys_are_read_afresh_after_a_settings_change(keys):
    keys(OLD_KEY)
    first = crypto.get_fernet()
    keys(NEW_KEY)
    assert crypto.get_fernet() is not first
