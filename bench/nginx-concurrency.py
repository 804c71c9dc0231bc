#!/usr/bin/env python3
"""The most PHP requests the origin's nginx worked on at once, from its access log.

scripts/wp-env.sh logs each request's end (`end=` seconds) and duration (`rt=`); a request
ran from end - rt to end. Only requests that reached PHP count (static files and PHP-FPM's
status page do not). Times are compared in milliseconds, an end before a start at the same
millisecond (nginx's own resolution).

    nginx-concurrency.py ACCESS_LOG FROM_BYTE TO_BYTE     (the part of the log one run wrote)
"""
import re
import sys

log, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line_re = re.compile(r'"(\S+) (\S+)[^"]*" (\d+) .* end=([\d.]+) rt=([\d.]+)')
events = []
with open(log, "rb") as f:
    f.seek(start)
    text = f.read(max(0, stop - start)).decode("utf-8", "replace")
for line in text.splitlines():
    m = line_re.search(line)
    if not m:
        continue
    path = m.group(2)
    if "fpm-status" in path or path.startswith(("/wp-content/", "/static/", "/wp-includes/")):
        continue
    end_ms = round(float(m.group(4)) * 1000)
    start_ms = round((float(m.group(4)) - float(m.group(5))) * 1000)
    events.append((start_ms, 1))
    events.append((end_ms, -1))
events.sort()
current = most = 0
for _, d in events:
    current += d
    most = max(most, current)
print(most)
