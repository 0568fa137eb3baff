import pytest

from sendline.domain.templates import placeholder_problem, render, template_variables

VALUES = {"first_name": "Zoë", "last_name": "O'Brien", "call_number": "(888) 555-0123", "vehicle": "Civic"}


@pytest.mark.parametrize("template, expected", [
    ("Hi {first_name}, call {call_number}", "Hi Zoë, call (888) 555-0123"),
    ("{first_name} {last_name}", "Zoë O'Brien"),
    ("About your {vehicle}", "About your Civic"),
    ("About your {Vehicle}", "About your Civic"),
    ("Hi { first_name }!", "Hi Zoë!"),
])
def test_variables_render(template, expected):
    assert render(template, VALUES) == expected


@pytest.mark.parametrize("template, expected", [
    ("Hi {first_name}, call us", "Hi, call us"),
    ("Hi {first_name}!", "Hi!"),
    ("Hello {first_name} {last_name}!", "Hello!"),
    ("{first_name} welcome back", "welcome back"),
    ("Hi {first_name} {last_name}, your {unknown} is ready", "Hi, your is ready"),
    ("Dear {first_name}\nCall now", "Dear\nCall now"),
    ("{first_name}", ""),
])
def test_missing_values_leave_no_gap_and_no_braces(template, expected):
    rendered = render(template, {"first_name": "  ", "last_name": None})
    assert rendered == expected
    assert "  " not in rendered and "{" not in rendered


def test_template_variables_in_order_of_first_use():
    assert template_variables("{b} {a} {B} {c_1}") == ["b", "a", "c_1"]


@pytest.mark.parametrize("template", ["Hi {first_name}, call {call_number}", "Hi { first_name }!", "{_x1}", "No variables"])
def test_well_formed_placeholders_have_no_problem(template):
    assert placeholder_problem(template) is None


@pytest.mark.parametrize("template, problem", [
    ("Hi {first name", '"{first name" has no closing "}"'),
    ("Hi {first_name, call {call_number}", '"{first_name, call" has no closing "}"'),
    ("Hi {1bad}", '"{1bad}" is not a variable: a name is letters, digits and _, and does not start with a digit'),
    ("Hi {first name}", '"{first name}" is not a variable: a name is letters, digits and _, and does not start with a digit'),
    ("Hi {}", '"{}" is not a variable: a name is letters, digits and _, and does not start with a digit'),
    ("Save 20%} today", '"}" at character 9 has no opening "{" (braces only mark variables, like {first_name})'),
    ("{{first_name}}", '"{" has no closing "}"'),
    ("Hi {first name and a long sentence after it",
     '"{first name and a long sentenc…" has no closing "}"'),
])
def test_a_broken_placeholder_is_named_with_the_reason(template, problem):
    assert placeholder_problem(template) == problem
