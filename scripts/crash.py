#!/usr/bin/env python3
"""Crash test: drive the Actito and SFMC listeners at a steady rate, `kill -9` the
server (or one of several replicas) at random moments, restart it, and afterwards
prove from the database that

- every acknowledged request (200) is stored exactly once;
- every stored request was fully processed exactly once: each sets a field of one
  pass to a value never used before, so the pass's version rises by exactly the
  number of stored requests that target it, with one pass version per request, and
  no version carries a value from a request that was not stored (nothing
  half-applied);
- every job ended done, no job's recorded attempts overlap, and every delivery
  (the Actito notifyOK callbacks, to a loopback sink) ended delivered or failed;
- with replicas (PostgreSQL): a console live feed on a replica that is never killed
  showed every acknowledged request's event id.

Python 3 standard library only. The binary comes from $PASSHOOK_BIN, else
$CARGO_TARGET_DIR/debug/passhook (a debug build is enough), else target/debug.

  scripts/crash.py --backend sqlite --duration 30 --kills 3
  scripts/crash.py --backend postgres --database-url postgres://…/postgres
  scripts/crash.py --backend postgres --replicas 3 --kills 2

On PostgreSQL without --database-url a throwaway server is started with
scripts/pg.sh; with one, a fresh database is created in it (and dropped after).
Exit status 0 when every check holds; each failed check is printed.
"""
import argparse, base64, glob, hashlib, hmac, http.client, json, os, random, shutil, signal, socket
import sqlite3, subprocess, sys, tempfile, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TENANT = "crash"
SALT = "crash-signing-salt"
# Every acknowledged event is applied within this of the load's end and the last restart.
DRAIN_AFTER_RESTART_S = 15
# After a kill or a database restart, requests may be refused for this long.
RECOVERY_S = 3.0
# Outside those windows, at least this share of requests must be acknowledged.
MIN_ACKED = 0.8
PASSWORD = "crash-test-password"
EMAIL = "admin@crash.test"
LISTENER = f"/api/{TENANT}/webhooks/listeners/actito/custom-actions/updatePass"
EXECUTE = f"/api/{TENANT}/webhooks/listeners/sfmc/actions/pushupdate/execute"


def log(*args):
    print(f"crash [{time.strftime('%H:%M:%S')}]", *args, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, headers=None, timeout=15):
    """One request on a fresh connection: (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = dict(headers or {})
        if data is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def api(port, method, path, body=None, key=None, expect=(200, 201)):
    status, _, data = request(port, method, path, body, {"X-API-KEY": key} if key else None)
    if status not in expect:
        sys.exit(f"crash: {method} {path} answered {status}: {data[:300]!r}")
    return json.loads(data or b"null")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_hs256(claims, secret):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


# ---------------------------------------------------------------------------- database


def pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        sys.exit(f"crash: {name} not found (apt-get install postgresql)")
    return candidates[-1]


class Database:
    """Read-only checks straight from the database, on either backend."""

    def __init__(self, url):
        self.url = url
        self.sqlite = url.startswith("sqlite:")

    def rows(self, sql):
        if self.sqlite:
            path = self.url.split("sqlite://", 1)[-1].split("?")[0]
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
            finally:
                conn.close()
        out = subprocess.run([pg_bin("psql"), "-X", "-A", "-t", "-q", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                              "-c", sql, self.url], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        rows = []
        for line in out.stdout.splitlines():
            if line == "":
                continue
            rows.append(tuple(None if v == "" else (int(v) if v.lstrip("-").isdigit() else v)
                              for v in line.split("\x1f")))
        return rows

    def value(self, sql):
        rows = self.rows(sql)
        return rows[0][0] if rows else None


# ---------------------------------------------------------------------------- processes


class Server:
    """One `passhook serve` process that can be killed and restarted."""

    def __init__(self, binary, env, port, logfile):
        self.binary, self.port, self.logfile = binary, port, logfile
        self.env = dict(env, PASSHOOK_ADDR=f"127.0.0.1:{port}")
        self.proc = None

    def start(self, timeout=90):
        out = open(self.logfile, "a")
        out.write(f"\n==== start at {time.strftime('%H:%M:%S')}\n")
        out.flush()
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=out, stderr=out)
        out.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"crash: the server on port {self.port} exited ({self.proc.returncode}); see {self.logfile}")
            try:
                if request(self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit(f"crash: the server on port {self.port} did not become ready")

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Sink(BaseHTTPRequestHandler):
    """Stands for Actito's notifyOK/notifyKO receiver (and its API host)."""
    calls = {}
    lock = threading.Lock()

    def do_POST(self):
        with Sink.lock:
            Sink.calls[self.path] = Sink.calls.get(self.path, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args):
        pass


class LiveFeed(threading.Thread):
    """A console session's `GET /console/live`, collecting the event ids it shows."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.event_ids = set()
        self.last_id = None
        self.connected = threading.Event()
        self.stopped = False

    def login(self):
        body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD}).encode()
        status, headers, _ = request(self.port, "POST", "/console/fn/login", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{self.port}"})
        cookie = next((v for k, v in headers.items() if k.lower() == "set-cookie" and v.startswith("passhook_session=")), None)
        if cookie is None:
            sys.exit(f"crash: console sign-in answered {status} without a session cookie")
        return cookie.split(";")[0]

    def run(self):
        cookie = self.login()
        while not self.stopped:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                headers = {"Cookie": cookie, "Accept": "text/event-stream"}
                if self.last_id:
                    headers["Last-Event-ID"] = self.last_id
                conn.request("GET", "/console/live", headers=headers)
                r = conn.getresponse()
                if r.status != 200:
                    raise RuntimeError(f"live feed answered {r.status}")
                self.connected.set()
                event_id, data = None, ""
                while not self.stopped:
                    line = r.readline()
                    if not line:
                        break
                    line = line.decode().rstrip("\r\n")
                    if line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif line == "":
                        if data:
                            try:
                                item = json.loads(data)
                                if item.get("type") == "inbound" and item.get("eventId"):
                                    self.event_ids.add(item["eventId"])
                            except ValueError:
                                pass
                            self.last_id = event_id or self.last_id
                        event_id, data = None, ""
            except Exception as e:  # noqa: BLE001 - reconnect on anything
                if not self.stopped:
                    log(f"live feed interrupted ({e}); reconnecting")
                    time.sleep(0.5)


# ---------------------------------------------------------------------------- load


class Load:
    """Sender threads posting unique custom actions and SFMC executes at a steady rate."""

    def __init__(self, servers, key, passes, rate, threads, run_id):
        self.servers, self.key, self.passes = servers, key, passes
        self.rate, self.threads, self.run_id = rate, threads, run_id
        self.lock = threading.Lock()
        self.counter = 0
        self.sent = []  # dicts: kind, ref, pass, value, outcome, status, event_id
        self.stop = threading.Event()
        self.slow = []  # latencies of acknowledged requests, in seconds

    def next_number(self):
        with self.lock:
            self.counter += 1
            return self.counter

    def one(self, port):
        n = self.next_number()
        pass_id = random.choice(self.passes)
        if n % 2:
            ref = f"{self.run_id}-ca-{n}"
            envelope = {"id": ref, "data": {
                "actionParameters.passId": pass_id,
                "actionParameters.actitoSeq": n,
                "profileAttributes.emailAddress": "nobody@crash.test",
                "_links": {"notifyOK": {"href": f"http://127.0.0.1:{SINK_PORT}/ok/{ref}"},
                           "notifyKO": {"href": f"http://127.0.0.1:{SINK_PORT}/ko/{ref}"}}}}
            entry = {"kind": "actito", "ref": ref, "dedupe": f"custom-action:{ref}", "pass": pass_id,
                     "key": "actitoSeq", "value": n}
            path, body, headers = LISTENER, json.dumps(envelope).encode(), {"X-API-KEY": self.key}
        else:
            ref = f"{self.run_id}-jb-{n}"
            claims = {"jti": ref, "journeyId": "crash-journey", "activityId": "crash-activity",
                      "keyValue": f"contact-{n}", "inArguments": [{"passId": pass_id, "additionalData.sfmcSeq": n}]}
            entry = {"kind": "sfmc", "ref": ref, "dedupe": f"jti:{ref}", "pass": pass_id, "key": "sfmcSeq", "value": n}
            path, body, headers = EXECUTE, jwt_hs256(claims, SALT).encode(), {"Content-Type": "application/jwt"}
        started = time.time()
        entry["at"] = started
        try:
            status, _, data = request(port, "POST", path, body, headers, timeout=15)
            entry["status"] = status
            if status == 200:
                entry["outcome"] = "acked"
                entry["event_id"] = json.loads(data).get("eventId")
                self.slow.append(time.time() - started)
            else:
                entry["outcome"] = "refused"
                entry["body"] = data[:200].decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            entry["outcome"], entry["status"] = "lost", str(e)
        with self.lock:
            self.sent.append(entry)

    def sender(self, index):
        interval = self.threads / self.rate
        next_at = time.time() + random.random() * interval
        turn = index
        while not self.stop.is_set():
            pause = next_at - time.time()
            if pause > 0:
                time.sleep(pause)
            next_at += interval
            server = self.servers[turn % len(self.servers)]
            turn += 1
            self.one(server.port)

    def run(self):
        workers = [threading.Thread(target=self.sender, args=(i,), daemon=True) for i in range(self.threads)]
        for w in workers:
            w.start()
        return workers


SINK_PORT = 0


def main():
    global SINK_PORT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", help="PostgreSQL server to create a fresh database in")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--duration", type=float, default=30, help="seconds of load")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--db-restarts", type=int, default=0,
                        help="PostgreSQL restarts mid-run (needs a server we may stop: ours, or --pg-dir)")
    parser.add_argument("--pg-dir", help="the scripts/pg.sh directory of --database-url's server")
    parser.add_argument("--rate", type=float, default=40, help="requests per second, all senders together")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--passes", type=int, default=12)
    parser.add_argument("--lease-ms", type=int, default=3000, help="job lease (PASSHOOK_JOB_LEASE_MS)")
    parser.add_argument("--drain-timeout", type=float, default=180)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    args = parser.parse_args()
    if args.replicas > 1 and args.backend != "postgres":
        sys.exit("crash: several replicas need --backend postgres")
    if args.db_restarts and (args.backend != "postgres" or (args.database_url and not args.pg_dir)):
        sys.exit("crash: --db-restarts needs --backend postgres, and --pg-dir with --database-url")

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.environ.get("PASSHOOK_BIN", os.path.join(target, "debug", "passhook"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"crash: no binary at {binary} (cargo build -p server --bin passhook, or set PASSHOOK_BIN)")

    work = tempfile.mkdtemp(prefix="passhook-crash.")
    cleanups = []
    servers = []
    live = None
    try:
        # The database.
        if args.backend == "sqlite":
            url = f"sqlite://{work}/crash.db"
        else:
            base, pgdir = args.database_url, args.pg_dir
            if not base:
                # Not inside `work`: its 0700 parent would keep the postgres account out.
                pgdir = tempfile.mkdtemp(prefix="passhook-crash-pg.")
                base = subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "start", pgdir],
                                      capture_output=True, text=True, check=True).stdout.strip()
                cleanups.append(lambda: subprocess.run([os.path.join(ROOT, "scripts", "pg.sh"), "stop", pgdir]))
            name = f"crash_{os.getpid()}_{random.randrange(1 << 30)}"
            Database(base).rows(f"CREATE DATABASE {name}")
            cleanups.append(lambda: Database(base).rows(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            parsed = urllib.parse.urlsplit(base)
            url = urllib.parse.urlunsplit(parsed._replace(path=f"/{name}"))
        env = dict(os.environ, DATABASE_URL=url, PASSHOOK_LOG=os.environ.get("PASSHOOK_LOG", "warn"),
                   PASSHOOK_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
                   PASSHOOK_JOB_LEASE_MS=str(args.lease_ms),
                   # The Actito sink listens on loopback, which only the operator can open.
                   PASSHOOK_ALLOW_PRIVATE_HOSTS="127.0.0.1")

        def cli(*argv, stdin=None):
            return subprocess.run([binary, *argv], env=env, input=stdin, capture_output=True, text=True,
                                  check=True).stdout

        cli("migrate")
        cli("tenant", "create", TENANT, "--name", "Crash test")
        cli("user", "create", "--tenant", TENANT, "--email", EMAIL, "--role", "admin", "--password-stdin",
            stdin=PASSWORD + "\n")
        key = cli("api-key", "create", "--tenant", TENANT, "--name", "crash", "--scope", "ActitoListener.Write",
                  "--scope", "Passes.Read", "--scope", "Passes.Write", "--scope", "Audit.Read",
                  "--scope", "Integrations.Write").strip()

        sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        SINK_PORT = sink.server_address[1]
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        cleanups.append(sink.shutdown)

        for i in range(args.replicas):
            servers.append(Server(binary, env, free_port(), os.path.join(work, f"server-{i}.log")))
        for s in servers:
            s.start()
        port = servers[0].port
        api(port, "PUT", f"/api/{TENANT}/integrations/actito",
            {"apiBaseUrl": f"http://127.0.0.1:{SINK_PORT}", "entity": "crash", "apiKey": "k",
             "profileTableId": "1", "callbackHosts": ["127.0.0.1"]}, key)
        api(port, "PUT", f"/api/{TENANT}/integrations/sfmc", {"signingKeys": [{"id": "crash", "secret": SALT}]}, key)
        passes, initial = [], {}
        for i in range(args.passes):
            p = api(port, "POST", f"/api/{TENANT}/passes",
                    {"passType": "crash", "identifiers": {"email": f"p{i}@crash.test"}}, key)
            passes.append(p["id"])
            initial[p["id"]] = p["version"]

        if args.replicas > 1:
            live = LiveFeed(servers[0].port)
            live.start()
            if not live.connected.wait(30):
                sys.exit("crash: the live feed did not connect")
            time.sleep(1)  # LISTEN in place

        log(f"{args.backend}, {args.replicas} replica(s), {args.rate:g} req/s for {args.duration:g} s, "
            f"{args.kills} kill(s), {args.db_restarts} database restart(s); work in {work}")
        load = Load(servers, key, passes, args.rate, args.threads, f"r{random.randrange(1 << 30):x}")
        started = time.time()
        senders = load.run()
        victims = servers[1:] if len(servers) > 1 else servers
        # Faults spread over the run, each at a random moment of its own slot.
        faults = ["kill"] * args.kills + ["database"] * args.db_restarts
        random.shuffle(faults)
        slot = args.duration / (len(faults) + 1)
        readiness = []
        windows = []  # (from, to): a fault and the few seconds a restart takes
        for k, fault in enumerate(faults):
            at = started + slot * (k + 0.5) + random.random() * slot
            time.sleep(max(0.0, at - time.time()))
            if fault == "kill":
                victim = random.choice(victims)
                killed_at = time.time()
                victim.kill()
                down = random.uniform(0.2, 1.5)
                log(f"kill -9 of the server on port {victim.port} at {time.time() - started:.1f} s; restart in {down:.1f} s")
                time.sleep(down)
                victim.start()
                windows.append((killed_at, time.time() + RECOVERY_S))
            else:
                pg_sh = os.path.join(ROOT, "scripts", "pg.sh")
                log(f"PostgreSQL stops at {time.time() - started:.1f} s")
                paused_at = time.time()
                subprocess.run([pg_sh, "pause", pgdir], check=True)
                time.sleep(0.5)
                try:
                    readiness.append(request(servers[0].port, "GET", "/readyz", timeout=10)[0])
                except OSError as e:
                    readiness.append(str(e))
                time.sleep(random.uniform(0.5, 2.0))
                subprocess.run([pg_sh, "resume", pgdir], check=True)
                windows.append((paused_at, time.time() + RECOVERY_S))
                log(f"PostgreSQL is back at {time.time() - started:.1f} s; /readyz said {readiness[-1]} meanwhile")
        time.sleep(max(0.0, started + args.duration - time.time()))
        load.stop.set()
        for w in senders:
            w.join()
        sent = load.sent
        outcomes = {}
        for e in sent:
            outcomes[e["outcome"]] = outcomes.get(e["outcome"], 0) + 1
        log(f"sent {len(sent)}: {outcomes}")

        db = Database(url)
        stopped_at = time.time()
        drained = drain(db, args.drain_timeout)
        # A restarted process takes its predecessor's jobs over at once (SQLite), a
        # replica a dead one's within the lease (PostgreSQL, 12 s): the backlog is
        # worked off soon after the load and the last restart, not after a minute.
        settled_in = time.time() - max(stopped_at, max((b - RECOVERY_S for _, b in windows), default=0))
        log(f"the queue drained {settled_in:.1f} s after the load stopped and the last restart")
        time.sleep(1)
        failures = check(db, sent, initial, Sink.calls, live)
        # A run in which most requests were refused proves nothing: outside the fault
        # windows, at least MIN_ACKED of the requests must have been acknowledged.
        calm = [e for e in sent if not any(a <= e["at"] <= b for a, b in windows)]
        calm_acked = sum(1 for e in calm if e["outcome"] == "acked")
        log(f"outside the fault windows: {calm_acked} of {len(calm)} acknowledged")
        if not calm or calm_acked < MIN_ACKED * len(calm):
            failures.append(f"only {calm_acked} of {len(calm)} requests outside the fault windows "
                            f"were acknowledged (at least {MIN_ACKED:.0%} required)")
        failures += [f"/readyz answered {r} while PostgreSQL was down" for r in readiness if r != 503]
        if args.db_restarts and not any(e["outcome"] == "refused" for e in load.sent):
            log("note: no request arrived while PostgreSQL was down")
        if not drained:
            failures.insert(0, "the queue did not drain in time")
        elif settled_in > DRAIN_AFTER_RESTART_S:
            failures.append(f"the queue drained {settled_in:.1f} s after the load and the last restart "
                            f"(at most {DRAIN_AFTER_RESTART_S} s)")
        if load.slow:
            lat = sorted(load.slow)
            log(f"acknowledged latency: p50 {lat[len(lat) // 2] * 1000:.0f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms")
        if failures:
            for f in failures:
                print("FAIL:", f)
            args.keep = True
            log(f"logs and database kept in {work}")
            return 1
        log("every check holds")
        return 0
    finally:
        if live:
            live.stopped = True
        for s in servers:
            s.stop()
        for c in reversed(cleanups):
            try:
                c()
            except Exception as e:  # noqa: BLE001
                log(f"cleanup: {e}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def drain(db, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        busy = db.value(f"SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'waiting')")
        pending = db.value(f"SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'retrying')")
        if busy == 0 and pending == 0:
            return True
        time.sleep(0.5)
    return False


def check(db, sent, initial, callbacks, live):
    failures = []
    t = f"tenant_id = '{TENANT}'"
    events = db.rows(f"SELECT id, dedupe_key, status, kind FROM inbound_events WHERE {t} "
                     "AND kind IN ('custom-action.updatePass', 'pushupdate.execute')")
    by_key = {}
    for event_id, dedupe, status, kind in events:
        by_key.setdefault(dedupe, []).append((event_id, status))
    stored = {}  # event id -> entry
    for e in sent:
        rows = by_key.get(e["dedupe"], [])
        if len(rows) > 1:
            failures.append(f"{e['ref']} stored {len(rows)} times")
        if e["outcome"] == "acked" and not rows:
            failures.append(f"{e['ref']} was acknowledged but is not stored")
        if e["outcome"] == "acked" and e.get("event_id") and rows and rows[0][0] != e["event_id"]:
            failures.append(f"{e['ref']} acknowledged as {e['event_id']} but stored as {rows[0][0]}")
        if e["outcome"] == "refused" and e["status"] != 503:
            failures.append(f"{e['ref']} answered {e['status']}: {e.get('body')}")
        if rows:
            e["stored_as"] = rows[0][0]
            stored[rows[0][0]] = e
            if rows[0][1] != "processed":
                failures.append(f"{e['ref']} ({rows[0][0]}) ended {rows[0][1]}, not processed")
    unknown = [event_id for event_id, *_ in events if event_id not in stored]
    if unknown:
        failures.append(f"{len(unknown)} stored events match no request sent: {unknown[:5]}")
    acked = sum(1 for e in sent if e["outcome"] == "acked")
    lost_stored = sum(1 for e in sent if e["outcome"] != "acked" and "stored_as" in e)
    log(f"stored {len(stored)} events: {acked} acknowledged, {lost_stored} stored without an answer received")

    # Pass versions: one per stored request, none from anything else.
    versions = db.rows(f"SELECT pass_id, version, event_id, changes FROM pass_versions WHERE {t}")
    per_event = {}
    for pass_id, version, event_id, changes in versions:
        per_event.setdefault(event_id, []).append(pass_id)
        entry = stored.get(event_id)
        if entry is None:
            failures.append(f"pass {pass_id} v{version} comes from {event_id}, which no stored request made")
            continue
        values = {c["key"]: c.get("after") for c in json.loads(changes)}
        if pass_id != entry["pass"] or values.get(entry["key"]) != entry["value"]:
            failures.append(f"pass {pass_id} v{version} ({values}) is not what {entry['ref']} asked")
    for event_id, entry in stored.items():
        made = per_event.get(event_id, [])
        if len(made) != 1:
            failures.append(f"{entry['ref']} ({event_id}) made {len(made)} pass versions, not 1")
    final = dict(db.rows(f"SELECT id, version FROM passes WHERE {t}"))
    for pass_id, first in initial.items():
        expected = first + sum(1 for e in stored.values() if e["pass"] == pass_id)
        if final.get(pass_id) != expected:
            failures.append(f"pass {pass_id} is at version {final.get(pass_id)}, expected {expected}")
    # Every value a pass holds came from a stored request for that pass and key.
    for pass_id, data in db.rows(f"SELECT id, additional_data FROM passes WHERE {t}"):
        held = json.loads(data) if isinstance(data, str) else (data or {})
        for key in ("actitoSeq", "sfmcSeq"):
            if key not in held:
                continue
            sources = {str(e["value"]) for e in stored.values() if e["pass"] == pass_id and e["key"] == key}
            if str(held[key]) not in sources:
                failures.append(f"pass {pass_id} holds {key}={held[key]}, which no stored request for it sent")
    # Jobs: all done, attempts of one job never overlap.
    jobs = dict(db.rows(f"SELECT status, COUNT(*) FROM jobs WHERE {t} GROUP BY status"))
    if set(jobs) - {"done"}:
        failures.append(f"jobs not done: {jobs}")
    attempts = db.rows(f"SELECT job_id, started_at, finished_at, worker FROM job_attempts WHERE {t} "
                       "ORDER BY job_id, started_at")
    for (j1, s1, f1, w1), (j2, s2, f2, w2) in zip(attempts, attempts[1:]):
        if j1 == j2 and s2 < f1:
            failures.append(f"job {j1}: attempts by {w1} and {w2} overlap ({s1}-{f1} and {s2}-{f2})")
    retried = db.value(f"SELECT COUNT(DISTINCT job_id) FROM job_attempts WHERE {t} AND attempt > 1")
    log(f"jobs: {jobs}; {len(attempts)} attempts recorded, {retried} job(s) needed more than one")
    # Deliveries: one notifyOK per stored custom action, each delivered (or failed for good).
    deliveries = db.rows(f"SELECT event_id, status, target FROM deliveries WHERE {t}")
    per_event_delivery = {}
    for event_id, status, target in deliveries:
        per_event_delivery.setdefault(event_id, []).append((status, target))
        if status not in ("delivered", "failed"):
            failures.append(f"delivery for {event_id} to {target} ended {status}")
    for event_id, entry in stored.items():
        if entry["kind"] != "actito":
            continue
        made = per_event_delivery.get(event_id, [])
        if len(made) != 1 or "/ok/" not in made[0][1]:
            failures.append(f"{entry['ref']} has deliveries {made}, not one notifyOK")
        elif callbacks.get(f"/ok/{entry['ref']}", 0) < 1:
            failures.append(f"the sink never received {entry['ref']}'s notifyOK")
    repeated = sum(1 for n in callbacks.values() if n > 1)
    log(f"deliveries: {len(deliveries)}; callbacks received {sum(callbacks.values())}, {repeated} more than once")
    # The live feed (replicas): every acknowledged request's event on one replica's console.
    if live is not None:
        missing = [e.get("stored_as") for e in sent if e["outcome"] == "acked" and e.get("stored_as") not in live.event_ids]
        log(f"live feed showed {len(live.event_ids)} event ids; {len(missing)} acknowledged ones missing")
        if missing:
            failures.append(f"the live feed never showed {len(missing)} acknowledged events, e.g. {missing[:5]}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
