"""The settings behind #emergency and #about-reply (issue 12): Danish defaults, validated."""

from pathlib import Path

import pytest

from gateway.settings import SettingsError, build_settings

SECRET = b"k" * 32


def settings(config: dict):  # type: ignore[no-untyped-def]
    return build_settings(Path("/srv/fristed"), config, {}, SECRET)


def test_the_defaults_are_danish() -> None:
    s = settings({})
    assert (s.help.emergency_number, s.help.police_number) == ("112", "114")
    assert (s.help.helpline_name, s.help.helpline_number, s.help.helpline_always_open) == ("Lev Uden Vold", "1888", True)
    assert s.timezone == "Europe/Copenhagen"
    assert s.organisation_name == "Fristed"
    assert s.reply_promise == {} and s.next_steps == {}  # the translated defaults


def test_another_country_sets_its_own_numbers_and_may_have_no_helpline() -> None:
    s = settings({"help": {"emergency_number": "911", "police_number": "", "helpline_name": "", "helpline_number": ""}})
    assert (s.help.emergency_number, s.help.police_number, s.help.helpline_number) == ("911", "", "")


def test_texts_are_one_for_every_language_or_one_per_language() -> None:
    assert settings({"reply_promise": "Vi svarer inden for 2 timer."}).reply_promise == {"*": "Vi svarer inden for 2 timer."}
    per_language = settings({"next_steps": {"da": "Vi ringer ikke.", "en": "We never call."}}).next_steps
    assert per_language == {"da": "Vi ringer ikke.", "en": "We never call."}
    assert settings({"duty_hours": {"da": "Hverdage 9-21."}}).duty_hours == {"da": "Hverdage 9-21."}


@pytest.mark.parametrize(
    ("config", "name"),
    [
        ({"help": {"emergency_number": ""}}, "help.emergency_number"),
        ({"help": {"emergency_number": "call 112"}}, "help.emergency_number"),
        ({"help": {"police_number": 114}}, "help.police_number"),
        ({"help": {"helpline_number": ""}}, "help.helpline_name"),
        ({"help": {"helpline_always_open": "yes"}}, "help.helpline_always_open"),
        ({"help": "112"}, "[help]"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"organisation_name": "  "}, "organisation_name"),
        ({"reply_promise": {"xx": "?"}}, "reply_promise"),
        ({"next_steps": 3}, "next_steps"),
    ],
)
def test_a_bad_value_fails_at_start_with_the_name_of_the_setting(config: dict, name: str) -> None:
    with pytest.raises(SettingsError, match=name.replace("[", r"\[").replace("]", r"\]")):
        settings(config)
