"""The translation catalogues are complete, current and compiled (Italian, Spanish, Swedish,
Ukrainian), and a member's emails and pages come out in their language."""

from __future__ import annotations

import gettext as gnu_gettext
import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.utils import translation

from wagtail_bookings_vc.models import BookingStatus
from wagtail_bookings_vc.models.schedule import WEEKDAYS

PACKAGE = Path(__file__).resolve().parent.parent / "wagtail_bookings_vc"
LOCALE = PACKAGE / "locale"
LANGUAGES = ("it", "es", "sv", "uk")
# %(name)s, %s, %d and {name} must survive translation unchanged.
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdf]|%[sd]|\{[a-z_]*\}")


def catalogue(language: str) -> polib.POFile:
    path = LOCALE / language / "LC_MESSAGES" / "django.po"
    assert path.exists(), f"{path} is missing: run `make messages`."
    return polib.pofile(str(path))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_translated(language):
    po = catalogue(language)
    untranslated = [entry.msgid for entry in po.untranslated_entries()]
    fuzzy = [entry.msgid for entry in po.fuzzy_entries()]

    assert untranslated == [], (
        f"{language}: {len(untranslated)} untranslated, e.g. {untranslated[:3]}"
    )
    assert fuzzy == [], f"{language}: {len(fuzzy)} fuzzy, e.g. {fuzzy[:3]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder(language):
    wrong = []
    for entry in catalogue(language).translated_entries():
        if entry.msgid_plural:
            expected = sorted(PLACEHOLDER.findall(entry.msgid_plural))
            forms = entry.msgstr_plural.values()
        else:
            expected = sorted(PLACEHOLDER.findall(entry.msgid))
            forms = [entry.msgstr]
        for text in forms:
            # A plural form may leave the number out ("one booking"), nothing else.
            found = sorted(PLACEHOLDER.findall(text))
            if found != expected and sorted({*found, "%d", "%(count)s"}) != sorted(
                {*expected, "%d", "%(count)s"}
            ):
                wrong.append((entry.msgid, text))
    assert wrong == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_its_source(language):
    po = catalogue(language)
    mo_path = LOCALE / language / "LC_MESSAGES" / "django.mo"
    assert mo_path.exists(), f"{mo_path} is missing: run `make messages`."
    mo = polib.mofile(str(mo_path))
    compiled = {(e.msgctxt, e.msgid): e.msgstr or dict(e.msgstr_plural) for e in mo}
    source = {
        (e.msgctxt, e.msgid): e.msgstr or {int(k): v for k, v in e.msgstr_plural.items()}
        for e in po.translated_entries()
    }
    stale = [key for key, text in source.items() if compiled.get(key) != text]
    assert stale == [], f"{language}: the .mo is older than the .po: run `make messages`."


def test_the_catalogues_hold_every_string_of_the_code(tmp_path):
    """A fresh extraction finds no string the catalogues lack, and they keep none it dropped."""
    if shutil.which("xgettext") is None:
        pytest.fail("xgettext is needed to check the catalogues: install gettext.")
    copy = tmp_path / "wagtail_bookings_vc"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "makemessages",
            "-l",
            "it",
            "--no-obsolete",
            "--no-location",
            "--ignore=testing/*",
        ],
        cwd=copy,
        check=True,
        capture_output=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(PACKAGE.parent),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        },
    )
    fresh = {
        (e.msgctxt, e.msgid) for e in polib.pofile(str(copy / "locale/it/LC_MESSAGES/django.po"))
    }
    for language in LANGUAGES:
        kept = {(e.msgctxt, e.msgid) for e in catalogue(language) if not e.obsolete}
        assert sorted(fresh - kept, key=str) == [], f"{language} lacks these: run `make messages`."
        assert sorted(kept - fresh, key=str) == [], f"{language} keeps dropped strings."


@pytest.mark.parametrize(
    ("language", "expected"),
    [("it", "Prenota"), ("es", "Reservar"), ("sv", "Boka"), ("uk", "Забронювати")],
)
def test_the_app_speaks_each_language(language, expected):
    from django.utils.translation import gettext

    with translation.override(language):
        assert gettext("Book") == expected


def their_translation(package: str, language: str, msgid: str) -> str:
    """``msgid`` as an installed package's own catalogue translates it."""
    module = importlib.import_module(package)
    mo = Path(module.__file__).parent / "locale" / language / "LC_MESSAGES" / "django.mo"
    with mo.open("rb") as file:
        return gnu_gettext.GNUTranslations(file).gettext(msgid)


@pytest.mark.parametrize(
    ("language", "package", "label", "context"),
    [
        # Wagtail's "Cancelled" (a workflow state) is "Avbruten"; a booking is "Avbokad".
        ("sv", "wagtail", BookingStatus.CANCELLED.label, "booking status"),
        # Django writes weekdays in lowercase Spanish ("lunes"); our choices are capitalised.
        ("es", "django.conf", dict(WEEKDAYS)[0], "weekday"),
    ],
)
def test_our_labels_leave_the_admins_own_translation_of_the_same_word_alone(
    language, package, label, context
):
    """Our one-word labels have a context, so they do not override Wagtail's or Django's."""
    from django.utils.translation import gettext

    msgid = str(label)  # English outside any override
    ours = catalogue(language).find(msgid, msgctxt=context).msgstr
    theirs = their_translation(package, language, msgid)
    assert ours != theirs
    with translation.override(language):
        assert gettext(msgid) == theirs
        assert str(label) == ours
