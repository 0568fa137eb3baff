"""Memory and speed of reading a bulk-campaign contacts file.

`python -m bench.import_memory [rows]` (a million by default) prints the figures as JSON.

Writes a deterministic contacts CSV as operators upload them (UTF-8 BOM, CRLF, six columns,
quoted cells holding commas, phones in five formats, about 2% unusable phones and 1% repeats of an
earlier phone in another format) to a temporary file, then reads it through
`sendline.domain.contacts_csv.read_contacts` in a fresh interpreter, so that the peak resident
memory measured is the import's alone, and returns the outcome counts, the time and the peak.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import LAYER_DIR

HEADER = ("First Name", "Last Name", "Phone", "Email", "City", "Lead Source")
# Area codes that phonenumbers knows as valid US ones, so that only the planted bad phones fail.
AREA_CODES = (201, 212, 213, 305, 312, 404, 415, 512, 617, 702, 713, 805, 919, 206, 303)
# N11 codes (411, 911) are not exchanges.
EXCHANGES = tuple(code for code in range(200, 1000) if code % 100 != 11)
FORMATS = ("({a}) {e}-{n}", "{a}.{e}.{n}", "+1 {a} {e} {n}", "{a}-{e}-{n}", "{a}{e}{n}")
BAD_PHONES = ("2.12555E+09", "call me", "", "12345", "555-CALL-NOW")
FIRST_NAMES = ("Ann", "Bob", "Cara", "José", "Zoë", "Dev", "Eve", "Łukasz")
LAST_NAMES = ("Lee", "Smith", "Núñez", "Rao", "O'Brien", "Ng")
CITIES = ("Austin, TX", "Miami", "New York, NY", "Denver", "Seattle, WA")
SOURCES = ("facebook", "google", "referral")
BAD_SHARE, REPEAT_SHARE = 0.02, 0.01

# Runs in the fresh interpreter: argv[1] is the layer folder, argv[2] the file.
_READER = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from sendline.domain.contacts_csv import ImportTally, read_contacts

def peak_rss_mb():
    # VmHWM is this process's own peak; ru_maxrss survives exec, so it could report the
    # parent's peak if the parent was larger. ru_maxrss is the fallback (KB on Linux).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)

started = time.perf_counter()
tally = ImportTally()
with open(sys.argv[2], "rb") as stream:
    layout, events = read_contacts(stream)
    for event in events:
        tally.add(event)
seconds = time.perf_counter() - started
print(json.dumps({"rows": tally.rows_read, "accepted": tally.accepted,
                  "duplicates": tally.duplicates, "rejected": tally.rejected,
                  "seconds": round(seconds, 2), "rows_per_s": round(tally.rows_read / seconds),
                  "peak_rss_mb": round(peak_rss_mb(), 1)}))
"""


def national_number(index: int) -> tuple[str, str, str]:
    """The index-th distinct valid US number as (area code, exchange, line)."""
    area = AREA_CODES[index % len(AREA_CODES)]
    rest = index // len(AREA_CODES)
    exchange = EXCHANGES[rest % len(EXCHANGES)]
    return str(area), str(exchange), f"{(rest // len(EXCHANGES)) % 10000:04d}"


def contact_rows(rows: int, seed: int = 20240601) -> Iterator[list[str]]:
    """The file's rows, the same for the same arguments."""
    rng = random.Random(seed)
    for index in range(rows):
        roll = rng.random()
        if roll < BAD_SHARE:
            phone = rng.choice(BAD_PHONES)
        else:
            # A repeat writes an earlier row's number in another format: one contact, not two.
            number = rng.randrange(index) if roll < BAD_SHARE + REPEAT_SHARE and index else index
            area, exchange, line = national_number(number)
            phone = rng.choice(FORMATS).format(a=area, e=exchange, n=line)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        yield [first, last, phone, f"{first[0].lower()}{index}@example.com", rng.choice(CITIES),
               rng.choice(SOURCES)]


def write_contacts_file(path: Path, rows: int) -> int:
    """Stream the rows to `path` (UTF-8 with a BOM, CRLF); returns the file's size in bytes."""
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        out.write(",".join(HEADER) + "\r\n")
        out.writelines(",".join(_quoted(cell) for cell in cells) + "\r\n"
                       for cells in contact_rows(rows))
    return path.stat().st_size


def _quoted(cell: str) -> str:
    if "," in cell or '"' in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def read_in_fresh_process(path: Path) -> dict:
    # -I: no user site or environment, as the bench's other probes run.
    completed = subprocess.run([sys.executable, "-I", "-c", _READER, str(LAYER_DIR), str(path)],
                               capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def run(rows: int = 1_000_000) -> dict:
    with tempfile.TemporaryDirectory(prefix="sendline-import-") as folder:
        path = Path(folder) / "contacts.csv"
        size = write_contacts_file(path, rows)
        result = read_in_fresh_process(path)
    result["file_mb"] = round(size / (1024 * 1024), 1)
    return result


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
