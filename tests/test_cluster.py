"""The production layout on loopback (deploy/cluster): nginx in front of two Daphne workers on
PostgreSQL and Redis. Through nginx: the youth page with its security headers, static files
from nginx itself, a chat between a youth and a staff member (a real two-factor login) with
sockets spread over both workers, a worker killed under a youth who reconnects and gets what
was sent meanwhile, and logs that hold no address and no user agent."""

import importlib.util
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests import cluster as fixtures
from tests.cluster import ROOT, HttpClient, hello, receive_until, send
from tests.test_no_trace import addresses
from youthhub.privacy import redact

make_cluster = fixtures.make_cluster
cluster = fixtures.cluster


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy_cluster = _load("deploy_cluster", "deploy/cluster.py")
errorlog = _load("deploy_errorlog", "deploy/nginx/errorlog.py")
TEMPLATE = (ROOT / "deploy" / "nginx" / "youthhub.conf").read_text()
SECURITY_HEADERS = [
    "Content-Security-Policy",
    "Permissions-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Frame-Options",
]


# --- the nginx config and the error log filter (no services needed) ----------------------


def test_the_production_config_logs_and_forwards_no_address_and_no_user_agent():
    formats = re.findall(r"log_format\s+\w+((?:\s+'[^']*')+)\s*;", TEMPLATE)
    assert formats, "no log_format"
    for variable in ("$remote_addr", "$http_user_agent", "$http_x_forwarded_for", "$http_cookie"):
        assert variable not in " ".join(formats)
        assert variable not in re.sub(r"#.*", "", TEMPLATE)
    assert "$proxy_add_x_forwarded_for" not in TEMPLATE
    code = re.sub(r"#.*", "", TEMPLATE)
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded", "User-Agent"):
        # blanked in both proxied locations (/ws/ and /)
        assert code.count(f'proxy_set_header {header} "";') == 2, header
    assert re.search(r"access_log\s+\S+\s+youthhub;", code)
    assert "error_log syslog:server=unix:" in code  # through errorlog.py, never to a file
    assert "proxy_max_temp_file_size 0;" in code and "least_conn;" in code
    assert "Upgrade $http_upgrade" in code and "proxy_read_timeout 1h;" in code


def test_the_loopback_variant_is_the_same_file_without_tls():
    site = deploy_cluster.render_site(
        TEMPLATE,
        {
            "workers": "server 127.0.0.1:9001 max_fails=1 fail_timeout=5s;\n"
            "server 127.0.0.1:9002 max_fails=1 fail_timeout=5s;",
            "backups": "server 127.0.0.1:9001 backup max_fails=0;\n"
            "server 127.0.0.1:9002 backup max_fails=0;",
            "listen": "127.0.0.1:9000",
            "server_name": "127.0.0.1 localhost",
            "access_log": "/x/logs/nginx-access.log",
            "errorlog_socket": "/x/run/errorlog.sock",
            "static_root": "/x/static",
        },
    )
    code = re.sub(r"#.*", "", site)
    assert "listen 127.0.0.1:9000;" in code and "ssl" not in code and "443" not in code
    assert "10.0.0." not in code and "/srv/" not in code and "chat.example.no" not in code
    assert "server 127.0.0.1:9001" in site and "server 127.0.0.1:9002" in site
    assert site.count(" backup max_fails=0;") == 2
    assert "alias /x/static/;" in site and "access_log /x/logs/nginx-access.log youthhub;" in site
    assert "error_log syslog:server=unix:/x/run/errorlog.sock,nohostname,tag=nginx warn;" in site
    # What is not marked is used word for word: proxying, buffering, limits, balancing.
    kept = [
        line
        for line in TEMPLATE.splitlines()
        if "cluster:" not in line
        and re.match(r"\s*(proxy_|location|client_|log_format|least_conn|keepalive|map)", line)
    ]
    assert len(kept) > 30
    for line in kept:
        assert line in site.splitlines(), line


@pytest.mark.parametrize(
    "line",
    [
        "connect() failed (111: Connection refused) while connecting to upstream, client: "
        '203.0.113.9, server: 127.0.0.1, request: "GET / HTTP/1.1", upstream: '
        '"http://127.0.0.1:8101/", host: "[2001:db8::1]:8080"',
        "client ::1 closed keepalive connection at 12:30:15 (nginx/1.22.1)",
    ],
)
def test_the_error_log_filter_masks_addresses_as_the_application_does(line):
    datagram = f"<11>Nov  3 12:30:15 nginx: 2026/11/03 12:30:15 [error] 7#7: *1 {line}".encode()
    written = errorlog.format_line(datagram)
    assert written == f"2026/11/03 12:30:15 [error] 7#7: *1 {redact(line)}\n"
    assert addresses(written) == [] and "12:30:15" in written


# --- the running cluster ------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.timeout(300)
def test_the_youth_page_comes_through_nginx_with_security_headers(cluster):
    status = cluster.status()
    assert status["up"] and len(status["workers"]) == 2 and status["url"] == cluster.url
    print(f"deploy/cluster up took {cluster.up_seconds:.1f}s")
    cluster.seed_demo()
    answer = HttpClient(cluster.url).get("/")
    assert answer.status == 200
    for header in SECURITY_HEADERS:
        assert answer.headers.get(header), header
    assert "ws://127.0.0.1:" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Server"] == "nginx"  # no version
    assert "no-store" in answer.headers["Cache-Control"]


@pytest.mark.services
def test_static_files_come_from_nginx_not_from_the_workers(cluster):
    page = HttpClient(cluster.url).get("/").text
    paths = re.findall(r'(/static/[^"]+\.(?:js|css))"', page)
    assert paths
    logged = [cluster.worker_log(index).read_text() for index in (1, 2)]
    for path in paths:
        answer = HttpClient(cluster.url).get(path)
        assert answer.status == 200 and answer.body, path
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Content-Type"].startswith(("application/javascript", "text/css"))
    # No worker saw those requests, and a worker would not even have them (production
    # settings: YOUTHHUB_SERVE_STATIC off): nginx answered from STATIC_ROOT.
    assert [cluster.worker_log(index).read_text() for index in (1, 2)] == logged
    worker = cluster.status()["workers"][0]["url"]
    assert HttpClient(worker).get(paths[0]).status == 404


def _chat(cluster, username):
    """A youth asks, `username` takes the chat. Returns the youth's socket and token, the staff
    socket, the conversation id, and which worker holds the staff and the youth socket."""
    before = cluster.ws_connects()
    staff = cluster.connect("/ws/staff/", cluster.staff_cookie(username))
    assert hello(staff)["staff"]
    staff_worker = _worker_of(cluster, before)
    token = cluster.youth_token()
    before = cluster.ws_connects()
    youth = cluster.connect("/ws/youth/")
    hello(youth, token=token)
    youth_worker = _worker_of(cluster, before)
    send(youth, {"type": "request", "target": "any"})
    conversation_id = receive_until(youth, "queued")["conversation_id"]
    receive_until(
        staff,
        "queue.update",
        where=lambda f: any(row["conversation_id"] == conversation_id for row in f["queue"]),
    )
    send(staff, {"type": "accept", "conversation_id": conversation_id})
    assert receive_until(youth, "assigned")["conversation"]["state"] == "active"
    receive_until(staff, "assigned")
    return youth, token, staff, conversation_id, staff_worker, youth_worker


def _worker_of(cluster, before: dict) -> int:
    """The worker that accepted the one socket opened since `before`."""
    after = cluster.ws_connects()
    grown = [index for index in after if after[index] > before[index]]
    assert len(grown) == 1, (before, after)
    return grown[0]


def _end(staff, conversation_id):
    send(staff, {"type": "end", "conversation_id": conversation_id})
    receive_until(staff, "ended")


@pytest.mark.services
@pytest.mark.timeout(120)
def test_a_youth_and_a_staff_member_chat_through_nginx(cluster):
    youth, _, staff, conversation_id, *_ = _chat(cluster, "ingrid")
    with youth, staff:
        send(youth, {"type": "message", "client_id": "y1", "text": "Hei, er det noen der?"})
        echo = receive_until(youth, "message")
        assert echo["client_id"] == "y1" and echo["sender"] == "youth"
        got = receive_until(staff, "message")
        assert got["text"] == "Hei, er det noen der?" and got["seq"] == echo["seq"]
        send(
            staff,
            {
                "type": "message",
                "conversation_id": conversation_id,
                "client_id": "s1",
                "text": "Ja!",
            },
        )
        got = receive_until(youth, "message", where=lambda f: f["sender"] == "staff")
        assert got["text"] == "Ja!" and got["seq"] == echo["seq"] + 1
        _end(staff, conversation_id)


@pytest.mark.services
@pytest.mark.timeout(60)
def test_sockets_are_spread_over_both_workers(cluster):
    before = cluster.ws_connects()
    sockets = [cluster.connect("/ws/youth/") for _ in range(6)]
    try:
        for ws in sockets:  # each is open and answers (an unknown token is refused properly)
            send(ws, {"type": "ping"})
            assert receive_until(ws, "error")["code"] == "hello_required"
        after = cluster.ws_connects()
    finally:
        for ws in sockets:
            ws.close()
    new = {index: after[index] - before[index] for index in after}
    assert sum(new.values()) == 6 and all(count >= 2 for count in new.values()), new


def _say(ws, side: str, conversation_id, client_id: str, text: str) -> None:
    frame = {"type": "message", "client_id": client_id, "text": text}
    if side == "staff":
        frame["conversation_id"] = conversation_id
    send(ws, frame)


@pytest.mark.services
@pytest.mark.timeout(180)
def test_a_killed_worker_costs_its_sockets_a_reconnect_and_nothing_else(cluster):
    """Kill (SIGKILL) the youth's worker, then stop (SIGTERM) the staff member's: each time the
    sockets on it close, reconnect through nginx to a live worker, and get by replay what the
    other side sent meanwhile; the worker is started again after each round."""
    youth, token, staff, conversation_id, staff_worker, youth_worker = _chat(cluster, "sara")
    print(f"staff socket on worker {staff_worker}, youth socket on worker {youth_worker}")
    sockets = {"youth": youth, "staff": staff}
    workers = {"youth": youth_worker, "staff": staff_worker}
    _say(youth, "youth", conversation_id, "y0", "før")
    last_seq = receive_until(youth, "message")["seq"]
    receive_until(staff, "message")

    def reopen(side: str):
        before = cluster.ws_connects()
        if side == "staff":
            ws = cluster.connect("/ws/staff/", cluster.staff_cookie("sara"))
            hello(ws, last_seq={str(conversation_id): last_seq})
        else:
            ws = cluster.connect("/ws/youth/")
            welcome = hello(ws, token=token, conversation_id=conversation_id, last_seq=last_seq)
            assert welcome["conversation"]["id"] == conversation_id
        workers[side] = _worker_of(cluster, before)
        sockets[side] = ws
        return ws

    for number, (side, signal) in enumerate((("youth", "KILL"), ("staff", "TERM")), 1):
        victim = workers[side]
        killed = cluster.kill_worker(victim, signal=signal)
        assert killed["signal"] == f"SIG{signal}" and not killed["running"]
        assert not cluster.status()["up"]
        gone = [name for name in sockets if workers[name] == victim]
        for name in gone:
            with pytest.raises(ConnectionClosed):
                receive_until(sockets[name], "never", timeout=15)
        other = "staff" if side == "youth" else "youth"
        if other in gone:
            reopen(other)
        # Written while `side` is away: acknowledged to the writer, waiting in the database.
        _say(
            sockets[other],
            other,
            conversation_id,
            f"{other}{number}",
            f"mens du var borte {number}",
        )
        missed = receive_until(sockets[other], "message", where=lambda f: f["sender"] == other)
        reopen(side)
        assert workers[side] != victim  # nginx skipped the dead worker
        replayed = receive_until(sockets[side], "message")
        assert (replayed["seq"], replayed["client_id"]) == (missed["seq"], f"{other}{number}")
        _say(sockets[side], side, conversation_id, f"{side}{number}", "her igjen")
        answer = receive_until(sockets[other], "message", where=lambda f: f["sender"] == side)
        assert answer["text"] == "her igjen"
        last_seq = answer["seq"]

        cluster.start_worker(victim)
        status = cluster.status()
        assert status["up"] and status["workers"][victim - 1]["running"]
        assert HttpClient(status["workers"][victim - 1]["url"]).get("/staff/login/").status == 200
    _end(sockets["staff"], conversation_id)
    for ws in sockets.values():
        ws.close()


@pytest.mark.services
@pytest.mark.timeout(60)
def test_no_log_of_the_cluster_holds_an_address_or_a_user_agent(cluster):
    # Traffic of its own (the other tests add theirs when they ran first): a page, an API call,
    # a socket, and a request to a dead worker, which nginx's error log reports with the client.
    client = HttpClient(cluster.url)
    assert client.get("/").status == 200
    cluster.youth_token()
    with cluster.connect("/ws/youth/") as ws:
        send(ws, {"type": "ping"})
        receive_until(ws, "error")
    cluster.kill_worker(1)
    for _ in range(4):
        assert client.get("/staff/login/").status == 200  # the other worker answers
    cluster.start_worker(1)

    logs = {path.name: path.read_text(errors="replace") for path in cluster.logs.glob("*.log")}
    assert '"GET / HTTP/1.1" 200' in logs["nginx-access.log"]
    assert "WSCONNECT /ws/youth/" in logs["worker-1.log"] + logs["worker-2.log"]
    assert "client: [address]" in logs["nginx-error.log"]  # the dead worker, masked
    for name, text in logs.items():
        assert addresses(text) == [], name
        assert "youthhubclusteragent" not in text.lower(), name  # USER_AGENT, of every client


def _scrape(url: str, token: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.services
@pytest.mark.timeout(60)
def test_each_worker_reports_the_sum_of_all_and_nginx_hides_metrics(cluster):
    status = cluster.status()
    token = Path(status["metrics_token_file"]).read_text().strip()
    before = cluster.ws_connects()
    sockets = []
    try:
        # Two sockets on each worker, straight to it (which worker nginx picks depends on what
        # earlier tests left open or killed; that nginx spreads them is tested above).
        for worker in status["workers"]:
            for _ in range(2):
                ws = cluster.connect("/ws/youth/", worker_url=worker["url"])
                sockets.append(ws)
                send(ws, {"type": "ping"})
                assert receive_until(ws, "error")["code"] == "hello_required"
        spread = {i: n - before[i] for i, n in cluster.ws_connects().items()}
        assert set(spread.values()) == {2}, spread  # each worker holds two of them ...
        open_youth = ("youthhub_websocket_connections", (("kind", "youth"),))
        for worker in status["workers"]:  # ... yet each reports all of them (multiprocess)
            assert _scrape(worker["url"] + "/metrics", token)[open_youth] >= len(sockets)
        # Not through nginx, token or not.
        request = urllib.request.Request(
            cluster.url + "/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 404
    finally:
        for ws in sockets:
            ws.close()
