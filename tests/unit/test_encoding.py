"""SMS encoding: which alphabet a text needs, what it costs in segments, and smart encoding."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendline.domain.encoding import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    EncodingReport,
    analyse,
    segment_count,
    smart_encode,
)

GSM_ALPHABET = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))


# --- the GSM-7 tables -------------------------------------------------------------------------


def test_gsm7_tables_have_the_03_38_sizes():
    # 128 basic codes minus ESC, and the 10 extension characters.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert GSM7_BASIC.isdisjoint(GSM7_EXTENSION)


@pytest.mark.parametrize("char", list("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r"))
def test_basic_table_characters_cost_one_septet(char):
    report = analyse(char)

    assert (report.encoding, report.units, report.segments) == (GSM7, 1, 1)


@pytest.mark.parametrize("char", ["€", "{", "}", "[", "]", "~", "^", "\\", "|", "\f"])
def test_extension_table_characters_cost_two_septets(char):
    report = analyse(char)

    assert (report.encoding, report.characters, report.units) == (GSM7, 1, 2)


@pytest.mark.parametrize("char", ["`", "\t", "\u201c", "\u2019", "á", "í", "ó", "ú", "â", "ê", "ç"])
def test_characters_outside_gsm7_force_ucs2(char):
    report = analyse(f"Hello {char} there")

    assert report.encoding == UCS2
    assert report.ucs2_characters == (char,)


# --- GSM-7 segment boundaries -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153), (459, 3, 153),
     (460, 4, 153)],
)
def test_gsm7_segment_boundaries(length, segments, per_segment):
    report = analyse("a" * length)

    assert report == EncodingReport(
        encoding=GSM7,
        characters=length,
        units=length,
        segments=segments,
        per_segment=per_segment,
        ucs2_characters=(),
    )


def test_extension_characters_fill_a_single_segment_twice_as_fast():
    assert analyse("€" * 80).segments == 1
    assert analyse("€" * 80).units == 160
    assert analyse("{" * 81).segments == 2


def test_an_esc_pair_never_straddles_two_segments():
    # Given 152 septets, then "€" (ESC + code), then 152 more: 306 septets, which would fit
    # two segments of 153 if the pair could be split after its ESC.
    text = "a" * 152 + "€" + "a" * 152

    # When
    report = analyse(text)

    # Then the pair moves whole into segment 2 (2 + 151), pushing one septet into a third.
    assert report.units == 306
    assert report.segments == 3
    assert report.per_segment == 153


def test_an_esc_pair_that_fits_exactly_stays_in_its_segment():
    text = "a" * 151 + "€" + "a" * 153

    assert analyse(text).units == 306
    assert analyse(text).segments == 2


# --- UCS-2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67)],
)
def test_ucs2_segment_boundaries(length, segments, per_segment):
    report = analyse("あ" * length)

    assert (report.encoding, report.units, report.segments, report.per_segment) == (
        UCS2,
        length,
        segments,
        per_segment,
    )
    assert report.ucs2_characters == ("あ",)


def test_one_non_gsm_character_makes_a_long_text_ucs2():
    text = "a" * 69 + "\u2019"

    report = analyse(text)

    assert (report.encoding, report.units, report.segments) == (UCS2, 70, 1)
    assert analyse(text + "a").segments == 2


@pytest.mark.parametrize(
    ("text", "units", "characters"),
    [
        ("\U0001f44d", 2, 1),  # thumbs up
        ("\U0001f44d\U0001f3fd", 4, 1),  # thumbs up, medium skin tone
        ("\U0001f1fa\U0001f1f8", 4, 1),  # flag: two regional indicators
        ("1\ufe0f\u20e3", 3, 1),  # keycap one
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", 11, 1),  # ZWJ family
        ("\u263a", 1, 1),  # BMP symbol
    ],
)
def test_emoji_count_utf16_code_units(text, units, characters):
    report = analyse(text)

    assert (report.encoding, report.units, report.characters, report.segments) == (
        UCS2,
        units,
        characters,
        1,
    )


def test_a_surrogate_pair_never_straddles_two_segments():
    # 66 units, then an astral emoji (2 units), then 66 more: 134 units, two segments of 67 only
    # if the pair were split.
    text = "あ" * 66 + "\U0001f44d" + "あ" * 66

    report = analyse(text)

    assert report.units == 134
    assert report.segments == 3


def test_ucs2_characters_lists_exactly_the_offending_characters_sorted_once():
    text = "Hi \u201cJosé\u201d, ça va? \U0001f44d\U0001f44d"

    report = analyse(text)

    assert report.ucs2_characters == ("ç", "\u201c", "\u201d", "\U0001f44d")


def test_empty_text_is_zero_segments():
    assert analyse("") == EncodingReport(
        encoding=GSM7, characters=0, units=0, segments=0, per_segment=160, ucs2_characters=()
    )
    assert segment_count("") == 0


def test_segment_count_matches_analyse():
    assert segment_count("a" * 161) == 2
    assert segment_count("\U0001f44d" * 36) == 2


# --- smart encoding ---------------------------------------------------------------------------


def test_smart_encoding_curly_quotes_turns_ucs2_into_gsm7():
    # Given a text whose only non-GSM characters are typographic quotes and a dash
    text = "\u201cDon\u2019t miss out\u201d \u2013 reply YES" + "!" * 45
    assert analyse(text).encoding == UCS2
    assert analyse(text).segments == 2

    # When
    encoded = smart_encode(text)

    # Then
    assert encoded == "\"Don't miss out\" - reply YES" + "!" * 45
    assert analyse(encoded).encoding == GSM7
    assert analyse(encoded).segments == 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("\u201c\u201d\u201f\u00ab\u00bb\u02ba\uff02", '"' * 7),
        ("\u2018\u2019\u201b\u02bc\u02bb\u00b4`", "'" * 7),
        ("\u2010\u2011\u2012\u2013\u2014\u2212", "-" * 6),
        ("Wait\u2026", "Wait..."),
        ("a\u00a0b\u2009c\u202fd\u3000e", "a b c d e"),
        ("Cafe\u0301", "Café"),
    ],
)
def test_smart_encoding_table(source, expected):
    assert smart_encode(source) == expected


def test_smart_encoding_ellipsis_costs_three_septets():
    assert analyse(smart_encode("\u2026")).units == 3


def test_smart_encoding_leaves_emoji_and_cjk_alone():
    text = "\u201cHi\u201d \U0001f44d\U0001f3fd 你好"

    encoded = smart_encode(text)

    assert encoded == '"Hi" \U0001f44d\U0001f3fd 你好'
    assert analyse(encoded).ucs2_characters == ("你", "好", "\U0001f3fd", "\U0001f44d")


# --- properties -------------------------------------------------------------------------------


@given(st.text())
def test_segments_never_fewer_than_units_over_capacity(text):
    report = analyse(text)

    assert report.segments >= math.ceil(report.units / report.per_segment)
    # Keeping pairs whole costs at most one unit per segment.
    if report.segments > 1:
        assert report.segments <= math.ceil(report.units / (report.per_segment - 1))


@given(st.text(alphabet=GSM_ALPHABET))
def test_gsm_alphabet_texts_are_gsm7_and_count_septets(text):
    report = analyse(text)

    assert report.encoding == GSM7
    assert report.units == len(text) + sum(c in GSM7_EXTENSION for c in text)
    assert report.ucs2_characters == ()


@given(st.text())
def test_smart_encoding_is_idempotent_and_never_adds_ucs2_characters(text):
    once = smart_encode(text)

    assert smart_encode(once) == once
    assert set(analyse(once).ucs2_characters) <= set(
        analyse(unicodedata.normalize("NFC", text)).ucs2_characters
    )
