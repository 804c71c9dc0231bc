"""Scores HTTP cache conformance results: peakguard's runs beside the suite's published ones.

usage: cache-conformance-score.py KINDS.json PUBLISHED_DIR PEAKGUARD_RUN.json...
A test passes when its result is `true`; for peakguard, in every run given. Kinds as the
suite names them: required (conformance), optimal (good practice), check (behaviour only,
not scored).
"""
import json
import pathlib
import sys

kinds = json.load(open(sys.argv[1]))
published = pathlib.Path(sys.argv[2])
runs = [json.load(open(p)) for p in sys.argv[3:]]
peers = ["nginx", "squid", "trafficserver", "varnish", "apache", "nuster", "fastly"]


def passed(results, test_id):
    return all(r.get(test_id) is True for r in results)


def score(results):
    out = {}
    for kind in ("required", "optimal"):
        ids = [t for t, k in kinds.items() if k == kind]
        out[kind] = (sum(passed(results, t) for t in ids), len(ids))
    return out


rows = [("peakguard (http profile)", score(runs))]
for peer in peers:
    path = published / f"{peer}.json"
    if path.exists():
        rows.append((f"{peer} (published)", score([json.load(open(path))])))
best_peer = max(r[1]["required"][0] for r in rows[1:])
print(f"{'cache':28} {'required':>12} {'optimal':>10}")
for name, s in rows:
    req, opt = s["required"], s["optimal"]
    print(f"{name:28} {req[0]:>5} / {req[1]:<4} {opt[0]:>4} / {opt[1]}")
print(f"\npeakguard required passes / best published peer: {rows[0][1]['required'][0]} / {best_peer}")
print("\nrequired tests peakguard fails:")
for t, k in kinds.items():
    if k == "required" and not passed(runs, t):
        why = next((r.get(t) for r in runs if r.get(t) is not True), None)
        print(f"  {t}: {json.dumps(why)[:140]}")
