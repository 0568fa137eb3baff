import pytest

from sendline.domain.keywords import KeywordAction, classify


@pytest.mark.parametrize("body", ["STOP", "stop", " Stop. ", "STOP!", "stop all", "Unsubscribe", "QUIT", "opt out",
                                  "OPTOUT", "revoke", "END", "cancel", "stopall"])
def test_opt_out_keywords(body):
    assert classify(body)[0] == KeywordAction.OPT_OUT


@pytest.mark.parametrize("body", ["stop by tomorrow?", "I can't stop smiling", "ending soon?", "yes please call"])
def test_ordinary_replies_are_not_keywords(body):
    assert classify(body) == (KeywordAction.NONE, None)


def test_opt_in_and_help():
    assert classify("start") == (KeywordAction.OPT_IN, "START")
    assert classify("Help!") == (KeywordAction.HELP, "HELP")
