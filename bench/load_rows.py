"""Loads realistic rows into a running service with SaveMultiple (1000 rows per request), as the
bench/ scripts need them: every field of SPEC §2 present, 7-digit dates, about 60 % pending,
30 % accepted, 10 % rejected with a reason, 20 % workshop jobs (never rejected), each job
dispatched 1-3 times (sequence 1-3). The same mix as bench/realistic.lua.

    python3 bench/load_rows.py HOST:PORT ROWS

The Authorization header comes from DISPATCHLOG_BENCH_AUTH. Prints
`loaded rows=N seconds=S`. Talks to the given address only; gives up after 900 s.
"""

import datetime
import http.client
import json
import os
import random
import sys
import time
import uuid

REASONS = [
    "Customer not at home, rescheduled by phone",
    "Missing part: compressor relay, ordered from the warehouse",
    "Vehicle breakdown on the way to the site",
    "Outside my skill set: needs a certified gas engineer",
    "Site closed for the public holiday",
    "Access refused by the building manager",
]
UNSET = "1980-01-01T00:00:00.0000000+00:00"


def date7(now, back):
    t = now - datetime.timedelta(seconds=back)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%07dZ" % random.randrange(10_000_000)


def rows(total):
    now = datetime.datetime.now(datetime.timezone.utc)
    made = 0
    while made < total:
        job = str(uuid.uuid4())
        workshop = random.random() < 0.2
        for sequence in range(1, random.randint(1, 3) + 1):
            if made == total:
                return
            draw = random.random()
            accepted = 0.6 <= draw < 0.9 or (draw >= 0.9 and workshop)
            rejected = draw >= 0.9 and not workshop
            created_back = 60 + random.randrange(3600)
            yield {
                "id": str(uuid.uuid4()),
                "jobs_id": job,
                "user_id": str(uuid.uuid4()),
                "date_create": date7(now, created_back),
                "date_proceeded": date7(now, created_back - 30) if accepted or rejected else UNSET,
                "is_accepted": accepted,
                "is_rejected": rejected,
                "rejected_reason": random.choice(REASONS) if rejected else "",
                "sys_logical_delete": False,
                "is_workshop": workshop,
                "modified_dateutc": date7(now, 0),
                "sequence": sequence,
                "assigned_user_ids": "",
            }
            made += 1


def main():
    addr, total = sys.argv[1], int(sys.argv[2])
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {
        "Content-Type": "application/json",
        "Authorization": os.environ["DISPATCHLOG_BENCH_AUTH"],
        "Prefer": "return=minimal",
    }
    started, done, batch = time.monotonic(), 0, []

    def send():
        conn.request("POST", "/api/JobDispatchLog/SaveMultiple", json.dumps(batch), headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit(f"SaveMultiple: {resp.status} {body[:300]!r}")

    for row in rows(total):
        batch.append(row)
        if len(batch) == 1000:
            send()
            done += len(batch)
            batch = []
            if time.monotonic() - started > 900:
                sys.exit(f"loading took longer than 900 s ({done} rows)")
    if batch:
        send()
        done += len(batch)
    print(f"loaded rows={done} seconds={time.monotonic() - started:.3f}")


if __name__ == "__main__":
    main()
