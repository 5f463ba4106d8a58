"""Citizen pages speak Danish by default; every citizen string is in the catalogs,
translated in Danish, and no language is half translated (never mixed on one page).

Staff pages are for Danish consultants: Danish translates every staff string; the
other languages may leave them untranslated (English source), which the
all-or-none rule, counting citizen strings only, does not mind."""

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from gateway.i18n import LANGUAGES, TRANSLATIONS_DIR

ROOT = Path(__file__).resolve().parents[2]
CITIZEN_SOURCES = [
    *sorted((ROOT / "web" / "templates" / "citizen").glob("*.html")),
    ROOT / "web" / "templates" / "layout.html",
    ROOT / "web" / "templates" / "error.html",
]
STAFF_SOURCES = sorted((ROOT / "web" / "templates" / "staff").glob("*.html"))
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}


def citizen_strings() -> set[str]:
    found: set[str] = set()
    for path in CITIZEN_SOURCES:
        found |= {m[1] for m in extract_from_file("jinja2", str(path), options=JINJA)}
    found |= {m[1] for m in extract_from_file("python", str(ROOT / "gateway" / "pages" / "citizen.py"))}
    assert len(found) > 40
    return {s for s in found if isinstance(s, str)}


def staff_strings() -> set[str]:
    found: set[str] = set()
    for path in STAFF_SOURCES:
        found |= {m[1] for m in extract_from_file("jinja2", str(path), options=JINJA)}
    found |= {m[1] for m in extract_from_file("python", str(ROOT / "gateway" / "pages" / "staff.py"))}
    assert len(found) > 40
    return {s for s in found if isinstance(s, str)}


def catalog(lang: str):
    with (TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def test_the_template_catalog_holds_every_citizen_string():
    with (TRANSLATIONS_DIR / "messages.pot").open("rb") as handle:
        pot = read_po(handle)
    assert citizen_strings() - {m.id for m in pot} == set()


def test_the_template_catalog_holds_every_staff_string():
    with (TRANSLATIONS_DIR / "messages.pot").open("rb") as handle:
        pot = read_po(handle)
    assert staff_strings() - {m.id for m in pot} == set()


def test_danish_translates_every_staff_string():
    da = catalog("da")
    untranslated = {s for s in staff_strings() if not (da.get(s) and da.get(s).string and not da.get(s).fuzzy)}
    assert untranslated == set()


def test_danish_translates_every_citizen_string():
    da = catalog("da")
    untranslated = {s for s in citizen_strings() if not (da.get(s) and da.get(s).string and not da.get(s).fuzzy)}
    assert untranslated == set()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_language_translates_all_citizen_strings_or_none(lang):
    messages = catalog(lang)
    done = {s for s in citizen_strings() if messages.get(s) and messages.get(s).string}
    assert done in (set(), citizen_strings()), f"{lang} is half translated: {sorted(citizen_strings() - done)[:5]}"
    for message, errors in messages.check():
        assert not errors, (lang, message.id, errors)
