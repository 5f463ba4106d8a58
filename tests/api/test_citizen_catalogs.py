"""Seven languages, really (issue 12): every string a citizen can see — in the citizen
templates, the base layout, the error page, the citizen routes and the error texts —
is translated in every catalog, and no translation is just the English source."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from gateway.i18n import LANGUAGES, TRANSLATIONS_DIR

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "web" / "templates"
CITIZEN_TEMPLATES = [*sorted((TEMPLATES / "citizen").glob("*.html")), TEMPLATES / "layout.html", TEMPLATES / "error.html"]
CITIZEN_PYTHON = [ROOT / "gateway" / "pages" / "citizen.py", ROOT / "gateway" / "pages" / "render.py"]
CITIZEN_SCRIPTS = [*sorted((ROOT / "web" / "static" / "citizen").glob("*.mjs")), ROOT / "web" / "static" / "quick-exit.mjs"]
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}
# Strings that are the same in every language: none today. Add only true invariants
# (a number, a name), never a sentence that merely looks alike.
INVARIANT: set[tuple[str, str]] = set()
# Words that give English away; none of them is a word in the other six languages.
ENGLISH_WORDS = re.compile(r"\b(the|your|please|message|answer|conversation|write|delete|code|with|and|you)\b", re.I)


def citizen_strings() -> set[str]:
    found: set[str] = set()
    for path in CITIZEN_TEMPLATES:
        found |= {m[1] for m in extract_from_file("jinja2", str(path), options=JINJA)}
    for path in CITIZEN_PYTHON:
        found |= {m[1] for m in extract_from_file("python", str(path))}
    strings = {s for s in found if isinstance(s, str)}
    assert len(strings) > 70
    return strings


def catalog(lang: str):  # type: ignore[no-untyped-def]
    with (TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_citizen_string_is_translated_in_every_catalog(lang: str) -> None:
    messages = catalog(lang)
    missing = sorted(s for s in citizen_strings() if not (messages.get(s) and messages.get(s).string and not messages.get(s).fuzzy))
    assert missing == [], f"{lang} lacks {len(missing)}: {missing[:5]}"
    for message, errors in messages.check():
        assert not errors, (lang, message.id, errors)


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_no_citizen_translation_is_the_english_source(lang: str) -> None:
    messages = catalog(lang)
    same = sorted(s for s in citizen_strings() if messages.get(s).string == s and (lang, s) not in INVARIANT)
    assert same == [], f"{lang} leaves English: {same}"


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_no_citizen_translation_reads_as_english(lang: str) -> None:
    """Somali was once English under lang="so": catch English words in any other language."""
    messages = catalog(lang)
    english = sorted(
        f"{s!r} -> {messages.get(s).string!r}"
        for s in citizen_strings()
        if ENGLISH_WORDS.search(re.sub(r"%\(\w+\)s", "", messages.get(s).string))
    )
    assert english == []


def test_every_text_the_scripts_show_comes_from_a_translated_template_attribute() -> None:
    """The scripts hold no words of their own: each `msg.xxx` they read is a `data-xxx`
    attribute of a citizen template, whose value is a gettext call."""
    templates = "\n".join(path.read_text(encoding="utf-8") for path in CITIZEN_TEMPLATES)
    for script in CITIZEN_SCRIPTS:
        source = script.read_text(encoding="utf-8")
        for key in set(re.findall(r"\bmsg\.(\w+)", source)):
            attribute = "data-" + re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), key)
            found = re.search(rf'{attribute}="([^"]*)"', templates)
            assert found, f"{script.name} reads msg.{key}, but no template has {attribute}"
            value = found.group(1)
            assert value.startswith("{{ _(") or key in {"maxChars", "timezone"}, (attribute, value)


def test_the_translations_readme_names_the_languages_no_native_speaker_reviewed() -> None:
    readme = (TRANSLATIONS_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Review", 1)[1]
    for lang in ("ar", "so", "tr", "ur", "fa"):
        assert re.search(rf"^\| `{lang}` \|[^\n]*not reviewed", section, re.M), lang
