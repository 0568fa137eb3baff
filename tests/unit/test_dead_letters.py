"""Dead letters as operators see them (phones masked, texts hidden) and how a redrive moves them."""

from __future__ import annotations

import pytest

from sendline.adapters.queue import QueueDepth, QueuedMessage
from sendline.errors import NotFound
from sendline.services.dead_letters import (
    describe,
    inspect_dead_letters,
    mask_body,
    mask_text,
    redrive_dead_letters,
)


@pytest.mark.parametrize(("text", "masked"), [
    ("+12125550142", "+1212***0142"),
    ("call 2125550142 now", "call +1212***0142 now"),
    ("(212) 555-0142", "+1212***0142"),
    ("212.555.0142 and +1 212 555 0199", "+1212***0142 and +1212***0199"),
    ("+447700900123", "+4477***0123"),
    ("ld_2125550142-0", "ld_2125550142-0"),        # part of an id
    ("msg 17333382000001", "msg 17333382000001"),  # a longer number (a timestamp)
    ("no phone here", "no phone here"),
    ("212-555-0142x123 or 212-555-0143 ext. 9", "+1212***0142 or +1212***0143"),   # extensions go too
    ("https://x.example/?to=%2B12125550143&id=7", "https://x.example/?to=+1212***0143&id=7"),  # in a URL
    ("+44 20 7946 0958 and +33 6 12 34 56 78", "+4420***0958 and +3361***5678"),  # written with spaces
])
def test_phone_numbers_in_text_are_masked_like_the_message_log(text, masked):
    assert mask_text(text) == masked


def test_a_json_body_keeps_its_shape_with_phones_masked_and_texts_hidden():
    body = ('{"message_id": "ld_1-0", "to": "2125550142", "phone": 2125550143, "from": "+1 (212) 555-0100",'
            ' "body": "Hi Ann, call 8885550123", "leads": [{"mobile": "212-555-0144", "step": 2}],'
            ' "created": 1733338200, "note": "from 212 555 0145"}')

    assert mask_body(body) == {
        "message_id": "ld_1-0", "to": "+1212***0142", "phone": "+1212***0143", "from": "+1212***0100",
        "body": "[23 characters hidden]", "leads": [{"mobile": "+1212***0144", "step": 2}],
        "created": 1733338200, "note": "from +1212***0145"}


def test_phones_are_masked_in_keys_in_numbers_of_any_type_and_in_excel_notation():
    body = ('{"+12125550148": {"sms": "Hi there", "msg": "call me", "sms_text": "yes"}, "float_phone": 2125550147.0,'
            ' "to": "2.125550142E+09", "count": 3, "ratio": 0.5}')

    assert mask_body(body) == {
        "+1212***0148": {"sms": "[8 characters hidden]", "msg": "[7 characters hidden]",
                         "sms_text": "[3 characters hidden]"},
        "float_phone": "+1212***0147", "to": "+1212***0142", "count": 3, "ratio": 0.5}


def test_a_body_that_is_not_json_is_masked_as_text():
    assert mask_body("to +12125550142: {broken") == "to +1212***0142: {broken"


def _message(sqs_id="m1", body='{"message_id": "ld_1-0"}', **attributes):
    return QueuedMessage(sqs_message_id=sqs_id, receipt_handle=f"rh-{sqs_id}", body=body,
                         attributes=attributes, message_attributes={})


def test_a_dead_letter_names_the_queue_sqs_says_it_came_from():
    message = _message(ApproximateReceiveCount="9", SentTimestamp="1764784800000",
                       ApproximateFirstReceiveTimestamp="1764784801500",
                       DeadLetterQueueSourceArn="arn:aws:sqs:us-east-1:123456789012:Prod-SendsQueue")

    assert describe(message, "sendline-sends") == {
        "sqs_message_id": "m1", "message_id": "ld_1-0", "receive_count": 9,
        "sent_at": "2025-12-03T18:00:00.000Z", "first_received_at": "2025-12-03T18:00:01.500Z",
        "source_queue": "Prod-SendsQueue", "body": {"message_id": "ld_1-0"}}


def test_a_dead_letter_never_received_has_no_first_receive():
    described = describe(_message(body="[1, 2]", SentTimestamp="1764784800000"), "sendline-sends")

    assert (described["message_id"], described["receive_count"], described["first_received_at"],
            described["source_queue"], described["body"]) == (None, 0, None, "sendline-sends", [1, 2])


class FakeQueues:
    """A dead-letter queue `dlq` for queue `q`; `refuse` names bodies SQS will not take on the
    queue, `stuck` ids it will not delete from the dead-letter queue."""

    def __init__(self, bodies, refuse=(), stuck=()):
        self.queue_urls, self.dlq_urls = {"sends": "q"}, {"sends": "dlq"}
        self.waiting = [_message(f"m{i}", body) for i, body in enumerate(bodies)]
        self.hidden, self.on_queue = [], []
        self.refuse, self.stuck = set(refuse), set(stuck)
        self.receives = 0

    def depth(self, url):
        if url == "q":
            return QueueDepth(len(self.on_queue), 0, 0, 180)
        return QueueDepth(len(self.waiting), len(self.hidden), 0, 30)

    def receive(self, url, max_messages, *, hide_s, wait_s=0):
        self.receives += 1
        batch, self.waiting = self.waiting[:min(10, max_messages)], self.waiting[min(10, max_messages):]
        self.hidden += batch
        return batch

    def release(self, url, messages):
        for message in messages:
            self.hidden.remove(message)
            self.waiting.append(message)

    def send_copies(self, url, messages):
        taken = [m for m in messages if m.body not in self.refuse]
        self.on_queue += [m.body for m in taken]
        return taken

    def delete(self, url, messages):
        kept = [m for m in messages if m.sqs_message_id in self.stuck]
        for message in messages:
            if message not in kept:
                self.hidden.remove(message)
        return kept


def test_redrive_moves_in_batches_and_reports_progress():
    queues = FakeQueues([f"b{n}" for n in range(25)])
    seen = []

    result = redrive_dead_letters(queues, "sends", 23, progress=lambda moved, target: seen.append((moved, target)))

    assert result == {"queue": "sends", "to": "q", "moved": 23, "refused": 0, "not_deleted": 0, "remaining": 2}
    assert queues.on_queue == [f"b{n}" for n in range(23)]
    assert seen == [(10, 23), (20, 23), (23, 23)]


def test_a_copy_sqs_refuses_stays_in_the_dead_letter_queue_and_stops_the_redrive():
    queues = FakeQueues(["a", "b", "c"] + [f"more{n}" for n in range(12)], refuse={"b"})

    result = redrive_dead_letters(queues, "sends", 100)

    assert (result["moved"], result["refused"], result["remaining"]) == (9, 1, 6)
    assert "b" not in queues.on_queue and [m.body for m in queues.waiting][-1] == "b"
    assert queues.hidden == []


def test_a_message_not_deleted_is_reported_not_lost():
    queues = FakeQueues(["a", "b"], stuck={"m1"})

    result = redrive_dead_letters(queues, "sends", 5)

    assert (result["moved"], result["not_deleted"], result["remaining"]) == (2, 1, 1)
    assert queues.on_queue == ["a", "b"]


def test_a_redrive_stops_when_the_invocation_runs_short_of_time():
    queues = FakeQueues([f"b{n}" for n in range(30)])
    time_left = iter([20.0, 12.0, 4.9])

    result = redrive_dead_letters(queues, "sends", 30, time_left_s=lambda: next(time_left))

    assert (result["moved"], result["remaining"], queues.receives) == (20, 10, 2)


def test_inspecting_releases_every_message_it_received():
    queues = FakeQueues([f'{{"message_id": "ld_{n}-0"}}' for n in range(12)])

    shown = inspect_dead_letters(queues, "sends", limit=11)

    assert [m["message_id"] for m in shown["messages"]] == sorted(f"ld_{n}-0" for n in range(11))
    assert (shown["shown"], shown["messages_in_queue"], len(queues.waiting), queues.hidden) == (11, 12, 12, [])


def test_an_unknown_queue_is_not_found_naming_the_known_ones():
    with pytest.raises(NotFound) as raised:
        inspect_dead_letters(FakeQueues([]), "texts")

    assert [(p.field, p.reason) for p in raised.value.problems] == [
        ("queue", "no dead-letter queue is called 'texts'; there are: sends")]
