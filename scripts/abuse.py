#!/usr/bin/env python3
"""What anonymous callers can make a release server allocate (issue 17, "Trust II").

Starts the release `passhook` on a fresh SQLite demo, then, without credentials:
5 MiB device logs in parallel (existing and unknown tenants), 5 MiB and deeply nested
SFMC JWTs, 5 MiB management API bodies, 33 MiB Actito bodies, a thousand invented HTTP
methods, and 60 parallel sign-ins with wrong passwords. Prints the answers and the
server's peak RSS, which must stay under 200 MB (exit status 1 otherwise).

Run through `make bench` (after `cargo build --release -p server --bin passhook`);
tests never run it.
"""
import base64, collections, concurrent.futures, http.client, os, re, signal, shutil, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
# PASSHOOK_BIN: another build (a debug one, to try the script out).
PASSHOOK = os.environ.get("PASSHOOK_BIN", os.path.join(TARGET, "release", "passhook"))
HOST, PORT = "127.0.0.1", 3910
LIMIT_MB = 200
MIB = 1024 * 1024


def rss_mb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def send(method, path, body=b"", headers=None, chunked=False):
    """One request on its own connection; the status, or the error's name when the
    server answered before the body was sent and closed (as a 413 may)."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        return str(conn.getresponse().status)
    except (BrokenPipeError, ConnectionResetError) as e:
        try:  # the answer may be waiting in the socket's buffer
            return str(conn.getresponse().status)
        except Exception:
            return type(e).__name__
    finally:
        conn.close()


REPORT = []


def burst(name, n, make, workers=None):
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or n) as pool:
        answers = collections.Counter(pool.map(lambda i: make(i), range(n)))
    print(f"  {name}: {dict(answers)}")
    REPORT.append((name, answers))
    return answers


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


SECTION = "\n## Anonymous abuse"


def write_report(report, idle, peak, now, invented):
    """Replaces the last section of docs/PERFORMANCE.md (bench.py keeps everything
    from its hand-written analysis on, this section included)."""
    path = os.path.join(ROOT, "docs", "PERFORMANCE.md")
    build = "debug" if "/debug/" in PASSHOOK else "release"
    lines = [SECTION.strip(), "",
             f"`scripts/abuse.py` ({time.strftime('%Y-%m-%d')}, {build} build, SQLite): unauthenticated",
             "requests meant to make the server allocate, all sent at once per row. Peak RSS must",
             f"stay under {LIMIT_MB} MB.", "",
             "| requests | answers |", "|---|---|"]
    lines += [f"| {name} | {', '.join(f'{k} x{v}' for k, v in sorted(answers.items()))} |" for name, answers in report]
    lines += ["", f"Idle {idle:.0f} MB, **peak {peak:.0f} MB**, {now:.0f} MB after; "
              f"metrics series of invented methods: {invented}.", "",
              "Before the per-route limits (issue 17, on 770ad94, debug build, same script): device logs",
              "and JWTs were parsed into trees of values before any check, the peak was 762 MB, and the",
              "invented methods left 20 000 metrics series behind.", ""]
    old = open(path).read() if os.path.exists(path) else ""
    if SECTION in old:
        old = old[:old.index(SECTION)]
    with open(path, "w") as f:
        f.write(old.rstrip("\n") + "\n\n" + "\n".join(lines))
    print("abuse: wrote its section of docs/PERFORMANCE.md")


def main():
    if not os.path.exists(PASSHOOK):
        sys.exit(f"abuse: {PASSHOOK} is missing (cargo build --release -p server --bin passhook)")
    work = tempfile.mkdtemp(prefix="passhook-abuse.")
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/abuse.db", PASSHOOK_ADDR=f"{HOST}:{PORT}",
               PASSHOOK_LOG="warn")
    demo = subprocess.run([PASSHOOK, "demo"], capture_output=True, text=True, env=env, check=True).stdout
    admin = re.search(r"Admin:\s+(\S+) /", demo).group(1)
    server = subprocess.Popen([PASSHOOK, "serve"], env=env)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://{HOST}:{PORT}/readyz", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        idle = rss_mb(server.pid, "VmRSS")
        print(f"abuse: idle RSS {idle:.0f} MB")
        json_h = {"Content-Type": "application/json"}
        # Many tiny lines: what costs most once parsed into a tree of values.
        big = b'{"logs":[' + b'"a",' * ((5 * MIB - 64) // 4) + b'"a"]}'
        for tenant in ("demo", "nobody"):
            burst(f"8 x 5 MiB device logs of 1.3 M lines ({tenant})", 8,
                  lambda i: send("POST", f"/api/{tenant}/wallet/apple/v1/log", big, json_h))
        # Without Content-Length: the limit cuts the stream off instead.
        burst("8 x 5 MiB chunked device logs", 8,
              lambda i: send("POST", "/api/demo/wallet/apple/v1/log", iter([big]), json_h, chunked=True))
        sfmc = "/api/demo/webhooks/listeners/sfmc/actions/pushupdate/execute"
        huge_header = b'{"alg":"HS256","x":[' + b"0," * ((15 * MIB // 4 - 64) // 2) + b'0]}'
        huge_jwt = (b64(huge_header) + ".e30.sig").encode()
        burst("8 x 5 MiB JWTs (a header of 1.9 M numbers)", 8, lambda i: send("POST", sfmc, huge_jwt))
        nested = b'{"alg":"HS256","x":' + b"[" * 60_000 + b"]" * 60_000 + b"}"
        nested_jwt = (b64(nested) + ".e30.sig").encode()
        burst("8 x 160 KiB nested JWT headers", 8, lambda i: send("POST", sfmc, nested_jwt))
        burst("8 x 5 MiB management bodies", 8,
              lambda i: send("POST", "/api/demo/passes", b" " * (5 * MIB - 64), json_h))
        burst("4 x 33 MiB Actito bodies", 4,
              lambda i: send("POST", "/api/demo/webhooks/listeners/actito/custom-actions/updatePass",
                             b" " * (33 * MIB), json_h))
        burst("1000 invented methods", 1000, lambda i: send(f"X{i:04d}", "/healthz"), workers=50)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        burst("60 sign-ins with wrong passwords", 60,
              lambda i: send("POST", "/console/fn/login", f"email={admin}&password=wrong-{i}".encode(), form))
        metrics = urllib.request.urlopen(f"http://{HOST}:{PORT}/metrics", timeout=10).read().decode()
        invented = len(re.findall(r'method="X\d{4}"', metrics))
        peak = rss_mb(server.pid, "VmHWM")
        now = rss_mb(server.pid, "VmRSS")
        print(f"abuse: peak RSS {peak:.0f} MB (now {now:.0f} MB, idle {idle:.0f} MB); "
              f"metrics series of invented methods: {invented}")
        write_report(REPORT, idle, peak, now, invented)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    if peak >= LIMIT_MB or invented:
        sys.exit(f"abuse: FAILED (peak {peak:.0f} MB, limit {LIMIT_MB} MB; {invented} invented-method series)")
    print("abuse: ok")


if __name__ == "__main__":
    main()
