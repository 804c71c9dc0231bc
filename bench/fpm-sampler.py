#!/usr/bin/env python3
"""Samples PHP-FPM's status page (through the origin's nginx) every 100 ms until stdin closes,
then prints one JSON line: the most active processes and the longest listen queue seen, how
many samples answered, each second's most active processes, and (read once the run is over)
PHP-FPM's own count of the times it reached max_children.

scripts/wp-env.sh gives the status page its own hidden pool (`pm.status_listen`), so a
sample never takes one of the site's workers and answers while they are all busy; a sample
that takes longer than 1 s is counted as unanswered (nginx itself was overloaded). PHP-FPM's
own high-water mark of active processes ("max active processes") is read at the end too: it
sees peaks shorter than the 100 ms between samples.

    fpm-sampler.py http://127.0.0.1:26180/fpm-status?json < fifo
"""
import json
import sys
import threading
import time
import urllib.request

url = sys.argv[1]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

most_active = 0
longest_queue = 0
answered = 0
unanswered = 0
per_second = {}
start = time.monotonic()
while not stop.is_set():
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            s = json.load(r)
        answered += 1
        active = int(s.get("active processes", 0))
        queue = int(s.get("listen queue", 0))
        most_active = max(most_active, active)
        longest_queue = max(longest_queue, queue)
        sec = int(t - start)
        per_second[sec] = max(per_second.get(sec, 0), active)
    except Exception:
        unanswered += 1
    stop.wait(max(0.0, 0.1 - (time.monotonic() - t)))

# After the run: its own count of the times it ran out of workers, and its busiest moment.
max_children_reached = None
max_active = None
try:
    with urllib.request.urlopen(url, timeout=5) as r:
        final = json.load(r)
    max_children_reached = int(final.get("max children reached", 0))
    max_active = int(final.get("max active processes", 0))
except Exception:
    pass

print(json.dumps({
    "max_children_reached": max_children_reached,
    "max_active_processes": max_active,
    "most_active": most_active,
    "longest_listen_queue": longest_queue,
    "answered": answered,
    "unanswered": unanswered,
    "active_per_second": [per_second.get(i, None) for i in range(int(time.monotonic() - start) + 1)],
}))
