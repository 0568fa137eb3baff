import json

import pytest

from sendline.domain.keywords import PHRASES_FILE, KeywordAction, classify, normalise_reply

OPT_OUT_KEYWORDS = ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                    "OPT OUT"]
PHRASES = json.loads(PHRASES_FILE.read_text(encoding="utf-8"))["phrases"]


def variants(word):
    return [word, word.lower(), word.title(), f"  {word}  ", f"{word}.", f"{word}!", f"{word.lower()}!!", f"\t{word}\n",
            f'"{word}"']


@pytest.mark.parametrize("keyword", OPT_OUT_KEYWORDS)
def test_each_opt_out_keyword_in_any_case_and_punctuation(keyword):
    for body in variants(keyword):
        assert classify(body) == (KeywordAction.OPT_OUT, keyword), body


@pytest.mark.parametrize("keyword", ["START", "UNSTOP", "YES"])
def test_each_opt_in_keyword(keyword):
    for body in variants(keyword):
        assert classify(body) == (KeywordAction.OPT_IN, keyword), body


@pytest.mark.parametrize("keyword", ["HELP", "INFO"])
def test_each_help_keyword(keyword):
    for body in variants(keyword):
        assert classify(body) == (KeywordAction.HELP, keyword), body


@pytest.mark.parametrize("body", ["STOP please", "please stop", "Stop now!", "stop. thank you", "Pls STOP",
                                  "stop stop"])
def test_a_keyword_with_only_courtesy_words_is_still_the_keyword(body):
    assert classify(body) == (KeywordAction.OPT_OUT, "STOP")


@pytest.mark.parametrize("phrase", PHRASES)
def test_each_plain_language_phrase_is_an_opt_out_alone_and_in_a_sentence(phrase):
    expected = (KeywordAction.OPT_OUT, "phrase: " + normalise_reply(phrase))
    for body in (phrase, phrase.upper() + "!!", f"Hi, {phrase}. Thanks", f"{phrase.capitalize()}?"):
        assert classify(body) == expected, body


@pytest.mark.parametrize("body, phrase", [
    ("Please stop texting me", "STOP TEXTING ME"),
    ("Remove me from your list", "REMOVE ME"),
    ("no more texts!!", "NO MORE TEXTS"),
    ("Wrong number", "WRONG NUMBER"),
    ("No más", "NO MAS"),
    ("NO MÁS MENSAJES", "NO MAS MENSAJES"),
    ("Don’t text me again", "DONT TEXT ME"),
    ("do not contact me", "DO NOT CONTACT ME"),
])
def test_the_issues_examples(body, phrase):
    assert classify(body) == (KeywordAction.OPT_OUT, f"phrase: {phrase}")


@pytest.mark.parametrize("body", [
    "stop by tomorrow?", "I can't stop smiling", "Can you stop by at 5?", "ending soon?", "yes please call",
    "Don't stop believing", "what's the end date?", "I'll cancel my other appointment", "Quite interested",
    "the bus stop on Main", "Yes, what time?", "Thanks!", "", "   ", "Baja California trip", "Is this the right number?",
    "STOP SIGN ahead", "please stop by the office", "Info about pricing please send",
])
def test_ordinary_replies_are_not_opt_outs(body):
    assert classify(body)[0] != KeywordAction.OPT_OUT


def test_replies_that_are_nothing_in_particular():
    assert classify("stop by tomorrow?") == (KeywordAction.NONE, None)
    assert classify("") == (KeywordAction.NONE, None)
    assert classify("yes please call") == (KeywordAction.NONE, None)


def test_normalise_reply():
    assert normalise_reply("  Stop. ") == "STOP"
    assert normalise_reply("No más!") == "NO MAS"
    assert normalise_reply("don't  TEXT\nme") == "DONT TEXT ME"
