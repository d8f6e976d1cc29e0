#!/usr/bin/env python3
"""Times the web UI's pages against a running `keel demo` (BENCHMARKS.md, issue 8).

Usage: scripts/bench-ui-pages.py PORT DEMO_STDOUT [REQUESTS]
  PORT         where `keel demo --listen 127.0.0.1:PORT` serves
  DEMO_STDOUT  the demo's stdout saved to a file (its example patients are read from it)
  REQUESTS     per page (default 200)

Signs in as the demonstration GP (and the information-governance lead for the audit page) at the
first organisation, then prints p50, p95 and max of the client's wall time per page. The times
include the in-process simulators' work, so they are an upper bound on Keel's own time.
"""
import http.client, re, sys, time, statistics
host, port = "127.0.0.1", int(sys.argv[1])
out = open(sys.argv[2]).read()
patients = re.findall(r"^ +(999\d{7}) +registered at", out, re.M)
def req(method, path, body=None, cookie=None):
    c = http.client.HTTPConnection(host, port)
    h = {}
    if cookie: h["Cookie"] = cookie
    if body is not None: h["Content-Type"] = "application/x-www-form-urlencoded"
    t = time.perf_counter(); c.request(method, path, body=body, headers=h); r = c.getresponse(); data = r.read(); dt = time.perf_counter() - t
    return r.status, r.getheader("Set-Cookie"), data, dt
_, _, page, _ = req("GET", "/ui/")
org = re.search(r'<option value="([A-Z0-9]+)"', page.decode()).group(1)
def session(user, org):
    s, cookie, _, _ = req("POST", "/ui/sign-in", f"user={user}&organisation={org}")
    return cookie.split(";")[0]
gp = session("gp", org); ig = session("ig-lead", org)
def p95(xs): xs = sorted(xs); return xs[int(len(xs) * 0.95) - 1]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 200
for name, cookie, paths in [
    ("record", gp, [f"/ui/patient/{p}" for p in patients]),
    ("search by NHS number", gp, [f"/ui/search?nhs={p}" for p in patients]),
    ("search by demographics", gp, ["/ui/search?family=Smith&given=John&birthdate=1970-01-01"]),
    ("practices", gp, ["/ui/practices"]),
    ("audit", ig, ["/ui/audit"]),
    ("sign-in", None, ["/ui/"]),
]:
    times = []
    for i in range(N):
        status, _, body, dt = req("GET", paths[i % len(paths)], cookie=cookie)
        assert status == 200, (name, status, body[:300])
        times.append(dt * 1000)
    print(f"{name:24} n={N} p50 {statistics.median(times):6.2f} ms  p95 {p95(times):6.2f} ms  max {max(times):6.2f} ms")
