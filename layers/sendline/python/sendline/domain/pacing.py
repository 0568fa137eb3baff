"""Pacing arithmetic for campaigns: which number sends to a contact, which creative it gets,
and in which second of the coming minute it goes, never above the campaign's rate or any
number's messages per second."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence


def _score(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest(), "big")


def contact_key(phone: str) -> str:
    """A stable, non-reversible-at-a-glance key for a contact's phone: message ids and queue
    bodies carry this, never the number itself."""
    return hashlib.blake2b(phone.encode(), digest_size=8).hexdigest()


def sticky_sender(phone: str, numbers: Sequence[str]) -> str:
    """The pool number this contact always hears from (rendezvous hashing).

    Contacts spread evenly over the pool, and adding or resting a number moves only the
    contacts of that number: everyone else keeps the sender they know."""
    if not numbers:
        raise ValueError("the pool has no active numbers")
    return max(numbers, key=lambda number: _score(number, phone))


def choose_creative(campaign_id: str, phone: str, weights: Sequence[tuple[str, int]]) -> str:
    """A creative drawn by weight, the same one every time for this campaign and contact, so a
    retried or resumed dispatch never changes what a contact is sent."""
    total = sum(w for _, w in weights)
    if total <= 0:
        raise ValueError("creative weights must add up to more than zero")
    point = _score(campaign_id, phone) % total
    for creative_id, weight in weights:
        if point < weight:
            return creative_id
        point -= weight
    return weights[-1][0]  # pragma: no cover - the loop always returns


def per_second_caps(rate: float, seconds: int) -> list[int]:
    """How many sends each second may take so that every stretch of time stays at `rate`:
    at 2.5/s the seconds take 3, 2, 3, 2...; at 0.5/s one send every other second, starting
    with the first."""
    return [math.ceil((s + 1) * rate - 1e-9) - math.ceil(s * rate - 1e-9) for s in range(seconds)]


class MinutePlan:
    """Places sends into the seconds of the coming minute, greedily and in order."""

    def __init__(self, rate: float, number_mps: dict[str, float], seconds: int = 60, start: int = 0):
        """`start`: the seconds before it are already planned by an earlier release."""
        self.seconds = seconds
        self._room = [0] * start + per_second_caps(rate, seconds - start) if start < seconds else [0] * seconds
        self._number_room = {n: [0] * start + per_second_caps(mps, seconds - start) if start < seconds
                             else [0] * seconds for n, mps in number_mps.items()}
        self._first_free = min(start, seconds)
        self._number_first_free = dict.fromkeys(number_mps, min(start, seconds))
        self.placed = 0
        self.last_second: int | None = None

    def place(self, number: str) -> int | None:
        """The second (0-59) this number's next send goes out in, or None if the minute is full
        for the campaign or for this number."""
        rooms = self._number_room.get(number)
        if rooms is None:
            return None
        start = max(self._first_free, self._number_first_free[number])
        for second in range(start, self.seconds):
            if self._room[second] > 0 and rooms[second] > 0:
                self._room[second] -= 1
                rooms[second] -= 1
                self._advance(number)
                self.placed += 1
                self.last_second = second if self.last_second is None else max(self.last_second, second)
                return second
        return None

    def full(self) -> bool:
        self._advance(None)
        return self._first_free >= self.seconds

    def _advance(self, number: str | None) -> None:
        while self._first_free < self.seconds and self._room[self._first_free] == 0:
            self._first_free += 1
        if number is not None:
            rooms, index = self._number_room[number], self._number_first_free[number]
            while index < self.seconds and rooms[index] == 0:
                index += 1
            self._number_first_free[number] = index
