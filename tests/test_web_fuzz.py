"""Every endpoint of the game server, fed garbage: never a 5xx, on SQLite and PostgreSQL.

A seeded table of cases (bounded, the same every run): each route with bad path values,
each odd method, body, header and query at least once per route, the rest drawn at random;
once as a stranger and once as a logged-in instructor whose forms carry the CSRF token.
Paths, queries and forms carry NUL and lone surrogates as a client sends them (bytes,
percent-encoded); headers as a WSGI server hands them over (latin-1).
"""

import itertools
import random
import re

import pytest
from web_helpers import make_game, store_results

from game_server.web.app import create_app
from game_server.web.ratelimit import FailureLimit

pytestmark = pytest.mark.slow

ADMIN = "instructor-secret"
CAP = 64 * 1024
SEED = 15

PATH_VALUES = [
    "%00",
    "a%00b",
    "%ED%A0%80",  # a lone surrogate, UTF-8 encoded
    "%C0%80",  # an overlong NUL
    "%FF%FE",
    "..%2F..%2Fetc%2Fpasswd",
    "x" * 2000,
    "-h",
    "%3Cscript%3E",
    "a%0D%0ASet-Cookie:%20x=1",
]
QUERIES = [
    "",
    "?limit=%00",
    "?limit=1e9&after=-1",
    "?after=99999999999999999999999999&limit=abc",
    "?phase=%ED%A0%80&last=%00",
    "?phase=-1&last=9",
    "?limit=&after=&phase=&last=",
    "?limit=1&limit=2",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"]
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MULTIPART = "multipart/form-data; boundary=x"  # the body below never ends its part
BODIES = [
    (None, None),
    (b"", FORM),
    (b'{"token": ', JSON),  # malformed JSON
    (b'[1, "two", null, {"pred": "\\ud800"}]', JSON),  # wrong types, an escaped surrogate
    (b"token=%00&csrf_token={csrf}&name=a%00b&url=%ED%A0%80&protocol=%00&model=x", FORM),
    (
        b"token=%ED%A0%80&csrf_token={csrf}&name=%3Ca+href%3D%22x%22%3E&url=http://127.0.0.1:1/",
        FORM,
    ),
    (b"csrf_token={csrf}&name=" + b"n" * 5000 + b"&url=" + b"u" * 5000 + b"&model=1", FORM),
    (b"csrf_token={csrf}&name=ok&url=http://127.0.0.1:9009/predict&protocol=mlflow", FORM),
    (
        b'--x\r\nContent-Disposition: form-data; name="token"\r\n\r\n\x00',
        "multipart/form-data; boundary=x",
    ),
    (b"x" * (CAP + 1), FORM),  # over the cap
]
FORMS = [b for b in BODIES if b[0] and b"{csrf}" in b[0]]
HEADERS = [
    {},
    {"Authorization": "Bearer \x00"},
    {"Authorization": "Bearer \xed\xa0\x80"},  # a surrogate's bytes, as latin-1
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer {team}"},
    {"Authorization": "Bearer {admin}"},
    {"If-None-Match": '"\x00", W/"x", *'},
    {"Cookie": "session=\x00garbage"},
    {"Accept": "\xff", "X-Request-ID": "\x00"},
]


VARIABLE = re.compile(r"<(?:[^:>]+:)?([^>]+)>")  # a rule's <converter:name>
GOOD = {"name": "red", "action": "pause", "verb": "disable", "path": "index.html"}
GOOD["filename"] = "css/game.css"


def fill(rule: str, values: dict[str, str]) -> str:
    """The rule's path with its variables replaced by `values`."""
    return VARIABLE.sub(lambda m: values[m.group(1)], rule)


def paths(rule: str) -> list[str]:
    """The rule's path with good values, then with each bad value in every variable."""
    out = [fill(rule, GOOD)]
    for var in VARIABLE.findall(rule):
        out += [fill(rule, {**GOOD, var: bad}) for bad in PATH_VALUES]
    return out


def cases(rules: dict[str, list[str]]) -> list[tuple]:
    """(path, method, body, content type, headers) for every rule (and its methods): bad
    path values with the rule's own methods, each other value at least once."""
    rng = random.Random(SEED)
    out = []
    for rule, methods in rules.items():
        first, *bad = paths(rule)
        for path, method in itertools.product(bad, methods):
            query = rng.choice(QUERIES)  # a form that passes the CSRF check reaches the view
            body = rng.choice(FORMS if method == "POST" else BODIES)
            out.append((path + query, method, *body, rng.choice(HEADERS)))
        for query in QUERIES:
            out.append((first + query, rng.choice(methods), None, None, rng.choice(HEADERS)))
        for method in METHODS:
            out.append((first, method, *rng.choice(BODIES), rng.choice(HEADERS)))
        for body in BODIES:
            query = rng.choice(QUERIES)
            out.append((first + query, rng.choice(methods), *body, rng.choice(HEADERS)))
        for headers in HEADERS:
            out.append((first, rng.choice(methods), *rng.choice(BODIES), headers))
    return out


@pytest.fixture
def app(db_url, tmp_path):
    """The app on a running game with a few rounds, a built deck, a lenient login limit."""
    engine, tokens = make_game(db_url)
    store_results(engine, {"red": "correct", "blue": "failed"}, rounds=3)
    (tmp_path / "index.html").write_text("<h1>deck</h1>")
    config = {"DATABASE_URL": db_url, "ADMIN_TOKEN": ADMIN, "SLIDES_DIR": str(tmp_path)}
    unlimited = {group: (10**9, 10**9) for group in ("teams", "monitoring", "feedback")}
    app = create_app({**config, "MONITORING_CACHE_SECONDS": 60.0, "RATE_LIMITS": unlimited})
    app.extensions["game_login_limit"] = FailureLimit(limit=10**9)  # reach every handler
    app.extensions["fuzz_team_token"] = tokens["red"]
    yield app
    engine.dispose()


def csrf_of(client) -> str:
    """The CSRF token of the client's session (from the instructor page)."""
    html = client.get("/admin").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def send(client, case: tuple, csrf: str, team: str):
    """Send one case; its status code."""
    path, method, body, content_type, headers = case
    headers = {k: v.replace("{team}", team).replace("{admin}", ADMIN) for k, v in headers.items()}
    data = None if body is None else body.replace(b"{csrf}", csrf.encode())
    response = client.open(
        path, method=method, data=data, content_type=content_type, headers=headers
    )
    response.close()
    return response.status_code


def log_in(client) -> str:
    """Log the client in as the instructor; the session's CSRF token."""
    response = client.post("/admin/login", data={"token": ADMIN, "csrf_token": csrf_of(client)})
    assert response.status_code == 302
    return csrf_of(client)


@pytest.mark.parametrize("as_instructor", [False, True], ids=["stranger", "instructor"])
def test_no_endpoint_answers_garbage_with_a_5xx(app, as_instructor):
    rules: dict[str, list[str]] = {}
    for rule in app.url_map.iter_rules():
        rules.setdefault(rule.rule, []).extend(sorted(rule.methods - {"HEAD", "OPTIONS"}))
    client = app.test_client()
    csrf = log_in(client) if as_instructor else csrf_of(client)
    team = app.extensions["fuzz_team_token"]
    errors = []
    for case in cases(rules):
        status = send(client, case, csrf, team)
        if status >= 500:
            errors.append((status, case[1], case[0][:80], (case[2] or b"")[:60], case[4]))
        if as_instructor and (case[0].startswith("/admin/log") or "Cookie" in case[4]):
            csrf = log_in(client)  # that case may have ended or replaced the session
    assert errors == []
