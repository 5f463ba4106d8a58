"""Languages: every user-facing string goes through gettext (Babel catalogs in web/translations).

`?lang=` wins; without it the page follows `Accept-Language` (read, never
stored or logged), else Danish.
"""

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

if TYPE_CHECKING:  # every `fristed` command reads LANGUAGES (settings); only serving needs aiohttp
    from aiohttp import web

LANGUAGES = ("da", "en", "ar", "so", "tr", "ur", "fa")
RTL = frozenset({"ar", "ur", "fa"})
DEFAULT = "da"
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "web" / "translations"
# The language names as their speakers write them, for the language menu.
NATIVE_NAMES = {
    "da": "Dansk",
    "en": "English",
    "ar": "العربية",
    "so": "Soomaali",
    "tr": "Türkçe",
    "ur": "اردو",
    "fa": "فارسی",
}


@dataclass(frozen=True)
class Catalogs:
    by_language: dict[str, NullTranslations]

    @classmethod
    def load(cls, directory: Path = TRANSLATIONS_DIR) -> "Catalogs":
        """Compile each `LANG/LC_MESSAGES/messages.po` in memory; a missing one falls back to the source text."""
        loaded: dict[str, NullTranslations] = {}
        for lang in LANGUAGES:
            po = directory / lang / "LC_MESSAGES" / "messages.po"
            if not po.exists():
                loaded[lang] = NullTranslations()
                continue
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=lang)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            loaded[lang] = Translations(buffer)
        return cls(loaded)

    def get(self, lang: str) -> NullTranslations:
        return self.by_language.get(lang) or NullTranslations()


def choose_language(request: "web.Request") -> str:
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def direction(lang: str) -> str:
    return "rtl" if lang in RTL else "ltr"
