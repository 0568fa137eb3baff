import pytest

from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone


@pytest.mark.parametrize("raw", [
    "(212) 555-0142", "+1 212 555 0142", "212.555.0142", "1-212-555-0142", "2.125550142E+09",
    " 212 555 0142 ", "2125550142.0", "212-555-0142 x123", "(212) 555-0142 ext. 7", 2125550142, "1.2125550142E+10", "+12125550142", "212-555-0142",
])
def test_lead_list_formats_become_e164(raw):
    assert normalise_phone(raw).e164 == "+12125550142"


@pytest.mark.parametrize("raw, reason", [
    ("2.12555E+09", "digits lost to Excel scientific notation"),
    ("2.1255501E+09", "digits lost to Excel scientific notation"),
    ("", "is blank"),
    ("   ", "is blank"),
    (None, "is required"),
    ("call me", "contains letters"),
    ("555-CALL-NOW", "contains letters"),
    ("12345", "not a valid phone number"),
    ("+44 20 7946 0958", "only US and Canadian numbers can be texted"),
    (True, "must be a string"),
    (["2125550142"], "must be a string"),
    (2125550142.5, "not a phone number"),
])
def test_unusable_phones_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(PhoneRejected) as caught:
        normalise_phone(raw)
    assert caught.value.reason == reason


def test_national_format_and_region():
    phone = normalise_phone("787 555 0123")
    assert (phone.e164, phone.national, phone.region) == ("+17875550123", "(787) 555-0123", "PR")


def test_masking_keeps_only_area_code_and_last_four():
    assert mask_phone("+12125550142") == "+1212***0142"
    assert mask_phone("") == ""
