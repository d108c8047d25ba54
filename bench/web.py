"""Benchmark the web interface against the JSON API, in one run: search page and deposit.

Run from the repository root:

    .venv/bin/python bench/web.py [--items 100000] [--queries 200] [--size-mib 1024]
        [--runs 3] [--part search|deposit|both] [--keep DIR] [--append-results]

Search (issue 19 point 12: the results page's p99 within 1.5x of the API's): a vault of
`--items` generated items in 200 cases, written and indexed as bench/search.py does (its `build`
and `vault.indexing.reindex`; `--keep DIR` builds it once and reuses it); `tvault serve` in a
subprocess. A lawyer granted on 10 cases signs in through the web form (a cookie session) and
also holds an API token. The same queries (words, AND, phrases, prefixes, filters, the empty
browse) go, in blocks of ten alternating which side goes first, to `POST /v1/search` (JSON)
and to `POST /search` (the results page, HTML), each over its own keep-alive connection: the
wall time of each request at the client on loopback (the same method for both sides), p50 and
p99 per side, and the server's CPU per request of each side (the server and its search helper).

Deposit (target: >= 0.8 of the API's rate): a fresh vault and server; a therapist with a token
and a web session. Each of `--runs` rounds deposits the same SIZE file three ways, one after the
other: `POST /v1/cases/{case}/items` with the raw body (as bench/deposit.py does), the deposit
form `POST /deposit` (multipart/form-data with the CSRF token and the form's one-time id, as a
browser without JavaScript sends it), and tus at `/uploads` with 16 MiB PATCH requests (as the
page's script, static/upload.js, sends a file; `--tus-piece-mib` tries another size). Every
deposit's SHA-256 is checked through the API. Ratios are to the round's API deposit; the median
round is reported.

Everything under /tmp is deleted afterwards (unless `--keep`).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import importlib.util
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this directory comes first on sys.path, where bench/search.py and
# bench/deposit.py would shadow the packages of the same names.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def _bench(name: str) -> ModuleType:
    """Load bench/NAME.py by file, under a name that shadows no package."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_search = _bench("search")  # the corpus of bench/search.py, and its helpers
bench_deposit = _bench("deposit")  # the API deposit of bench/deposit.py

import httpx  # noqa: E402
import psutil  # noqa: E402

from keys import KdfParams  # noqa: E402
from vault import passwords  # noqa: E402
from vault.accounts import OFFLINE, OFFLINE_ACTOR  # noqa: E402
from vault.compose import open_vault  # noqa: E402
from vault.headers import to_headers  # noqa: E402
from vault.indexing import reindex  # noqa: E402
from vault.provision import create_vault  # noqa: E402
from vault.settings import load_settings  # noqa: E402

MIB = 1024 * 1024
UPLOAD_JS_PIECE = 16 * MIB  # static/upload.js
TUS_PIECE = UPLOAD_JS_PIECE
PASSWORD = "a bench password, long enough"  # noqa: S105 (a throwaway vault)
PASSPHRASE = bench_search.PASSPHRASE
TVAULT = [sys.executable, "-m", "vault.cli"]
BLOCK = 10
WARM_UP_SECONDS = 5.0
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_FORM_ID = re.compile(r'name="form" value="([^"]+)"')


def _csrf(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    if found is None:
        raise SystemExit(f"no CSRF token on {page.url} ({page.status_code})")
    return found.group(1)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVAULT_")}
    env.update(TVAULT_HOME=str(home), TVAULT_PASSPHRASE=PASSPHRASE, PYTHONPATH=str(ROOT), **extra)
    return env


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = bench_deposit.free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*TVAULT, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the server did not start; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def _web_session(url: str, name: str) -> tuple[httpx.Client, str]:
    """Sign in through the web form; return the browser-like client and its session's CSRF."""
    client = httpx.Client(base_url=url, timeout=600, follow_redirects=False)
    form = client.get("/sign-in")
    answer = client.post("/sign-in", data={"csrf": _csrf(form), "name": name, "password": PASSWORD})
    if answer.status_code != 303 or answer.headers.get("location") != "/":
        raise SystemExit(f"web sign-in failed: {answer.status_code} {answer.text[:200]}")
    return client, _csrf(client.get("/search"))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    p50, p99 = bench_search._percentiles(samples)
    return float(p50), float(p99)


# --- search ----------------------------------------------------------------------------------


def _query_maker(seed: int) -> Callable[[], str]:
    rng = random.Random(seed)
    words = bench_search.ES_WORDS[40:] + bench_search.EN_WORDS[40:]
    kinds: list[Callable[[], str]] = [
        lambda: rng.choice(words),
        lambda: f"{rng.choice(words)} {rng.choice(words)}",
        lambda: '"golpes eléctricos"' if rng.random() < 0.5 else '"electric shocks"',
        lambda: f"{rng.choice(words)} OR {rng.choice(words)} -{rng.choice(words)}",
        lambda: rng.choice(words)[:4] + "*",
        lambda: f"{rng.choice(words)} lang:es year:{rng.randint(2015, 2024)}",
        lambda: "",
    ]
    return lambda: rng.choice(kinds)()


def build_search_vault(home: Path, items: int) -> float:
    """Create and index the corpus of bench/search.py in `home` unless it is there; give the
    lawyer a web password. Return the seconds the build took (0 when reused)."""
    settings = load_settings(home)
    took = 0.0
    if (home / "tvault.toml").exists():
        vault = open_vault(settings, PASSPHRASE)
    else:
        began = time.perf_counter()
        kdf = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
        vault = create_vault(settings, PASSPHRASE, "admin", kdf=kdf)
        # A throwaway corpus: the store's three fsyncs per sealed text (file, directory, mode)
        # would take most of an hour on a shared disk; one sync at the end instead.
        with mock.patch.object(os, "fsync", lambda fd: None):
            bench_search.build(vault, items, 7)
        os.sync()
        indexed = reindex(vault, workers=1)
        assert indexed == items, indexed
        took = time.perf_counter() - began
    try:
        passwords.set_password(vault, "lena", PASSWORD, actor=OFFLINE_ACTOR, via=OFFLINE)
    finally:
        vault.close()
    return took


@dataclass(frozen=True)
class SearchFigures:
    api: tuple[float, float]  # p50, p99 in ms
    page: tuple[float, float]
    cpu_api: float  # server CPU ms per request
    cpu_page: float
    count: int  # queries per side
    in_scope: int  # items the lawyer may find (the empty query's total)


def measure_search(home: Path, queries: int, work: Path) -> SearchFigures:
    env = _env(home, TVAULT_EMBEDDED_WORKER="false")
    token = bench_deposit.run("token", "lena", env=env)
    process, url = _serve(env, work / "search-server.log")
    try:
        server = psutil.Process(process.pid)

        def server_cpu() -> float:
            family = [server, *server.children(recursive=True)]
            return sum(sum(p.cpu_times()[:2]) for p in family)

        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        web, csrf = _web_session(url, "lena")
        with api, closing(web):

            def via_api(q: str) -> None:
                response = api.post("/v1/search", json={"q": q, "page_size": 20})
                response.raise_for_status()

            def via_page(q: str) -> None:
                response = web.post("/search", data={"csrf": csrf, "q": q})
                if response.status_code != 200 or "<html" not in response.text[:200].lower():
                    raise SystemExit(f"the results page failed: {response.status_code}")

            sides = {"api": via_api, "page": via_page}
            warm = _query_maker(12)
            began = time.monotonic()
            while time.monotonic() - began < WARM_UP_SECONDS:
                q = warm()
                via_api(q)
                via_page(q)
            times: dict[str, list[float]] = {"api": [], "page": []}
            cpu: dict[str, float] = {"api": 0.0, "page": 0.0}
            make = _query_maker(11)
            for block in range(queries // BLOCK):
                batch = [make() for _ in range(BLOCK)]
                order = ("api", "page") if block % 2 == 0 else ("page", "api")
                for side in order:
                    before = server_cpu()
                    for q in batch:
                        start = time.perf_counter()
                        sides[side](q)
                        times[side].append((time.perf_counter() - start) * 1000)
                    cpu[side] += server_cpu() - before
            in_scope = api.post("/v1/search", json={"q": "", "page_size": 20}).json()["total"]
    finally:
        _stop(process)
    count = len(times["api"])
    return SearchFigures(
        api=_percentiles(times["api"]),
        page=_percentiles(times["page"]),
        cpu_api=cpu["api"] * 1000 / count,
        cpu_page=cpu["page"] * 1000 / count,
        count=count,
        in_scope=int(in_scope),
    )


# --- deposit ---------------------------------------------------------------------------------


def _multipart(fields: list[tuple[str, str]], path: Path) -> tuple[Iterator[bytes], str, int]:
    """Return a multipart/form-data body as a browser sends the deposit form (the fields, then
    the file streamed in 1 MiB pieces, as bench/deposit.py streams the API's body), its
    Content-Type and its length."""
    boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    head = "".join(parts).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from bench_deposit.chunks(path)
        yield tail

    length = len(head) + path.stat().st_size + len(tail)
    return body(), f"multipart/form-data; boundary={boundary}", length


def _tus_metadata(fields: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def _tus_pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while piece := source.read(TUS_PIECE):
            yield piece


def measure_deposit(size_mib: int, runs: int, work: Path) -> list[dict[str, float]]:
    size = size_mib * MIB
    source = work / "input.bin"
    bench_deposit.make_file(source, size)
    digest = hashlib.sha256()
    for chunk in bench_deposit.chunks(source):  # also warms the page cache with the file
        digest.update(chunk)
    expected = digest.hexdigest()
    home = work / "deposit-vault"
    env = _env(home, TVAULT_MAX_UPLOAD_BYTES=str(size + 1), TVAULT_EMBEDDED_WORKER="false")
    bench_deposit.run("init", "--admin", "admin", "--allow-weak-passphrase", env=env)
    bench_deposit.run("users", "add", "tina", "--role", "therapist", env=env)
    token = bench_deposit.run("token", "tina", env=env)
    vault = open_vault(load_settings(home), PASSPHRASE)
    try:
        passwords.set_password(vault, "tina", PASSWORD, actor=OFFLINE_ACTOR, via=OFFLINE)
    finally:
        vault.close()
    process, url = _serve(env, work / "deposit-server.log")
    rounds: list[dict[str, float]] = []
    try:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
        web, csrf = _web_session(url, "tina")
        with api, closing(web):
            case = api.post("/v1/cases", json={"name": "bench"}).json()["id"]
            meta = {"kind": "media", "title": "bench", "consent": "therapy"}

            def checked(item_id: str) -> None:
                sha256 = api.get(f"/v1/items/{item_id}").json()["sha256"]
                if sha256 != expected:
                    raise SystemExit(f"item {item_id} has another SHA-256 than the file")

            def via_api() -> None:
                response = api.post(
                    f"/v1/cases/{case}/items",
                    content=bench_deposit.chunks(source),
                    headers={"Content-Length": str(size), **to_headers(meta)},
                )
                response.raise_for_status()
                checked(response.json()["id"])

            def via_form() -> None:
                page = web.get("/deposit")
                form_id = _FORM_ID.search(page.text)
                assert form_id is not None, page.text
                fields = [
                    ("csrf", _csrf(page)),
                    ("form", form_id.group(1)),
                    ("case", case),
                    ("kind", meta["kind"]),
                    ("title", meta["title"]),
                    ("consent", meta["consent"]),
                ]
                body, content_type, length = _multipart(fields, source)
                response = web.post(
                    "/deposit",
                    content=body,
                    headers={"Content-Type": content_type, "Content-Length": str(length)},
                )
                location = response.headers.get("location", "")
                if response.status_code != 303 or not location.startswith("/items/"):
                    raise SystemExit(f"the deposit form failed: {response.status_code}")
                checked(location.removeprefix("/items/"))

            def via_tus() -> None:
                headers = {"Tus-Resumable": "1.0.0", "Tvault-Csrf": csrf}
                created = web.post(
                    "/uploads",
                    headers=headers
                    | {
                        "Upload-Length": str(size),
                        "Upload-Metadata": _tus_metadata(
                            {"case": case, **meta, "filename": source.name}
                        ),
                    },
                )
                if created.status_code != 201:
                    raise SystemExit(f"tus creation failed: {created.status_code}")
                location = created.headers["location"]
                offset, item_id = 0, None
                for piece in _tus_pieces(source):
                    done = web.patch(
                        location,
                        content=piece,
                        headers=headers
                        | {
                            "Content-Type": "application/offset+octet-stream",
                            "Upload-Offset": str(offset),
                        },
                    )
                    if done.status_code != 204:
                        raise SystemExit(f"tus PATCH failed: {done.status_code}")
                    offset = int(done.headers["upload-offset"])
                    item_id = done.headers.get("tvault-item") or item_id
                if item_id is None:
                    raise SystemExit("tus: the last PATCH named no item")
                checked(item_id)

            server = psutil.Process(process.pid)
            for _ in range(runs):
                figures: dict[str, float] = {}
                for side, send in (("api", via_api), ("form", via_form), ("tus", via_tus)):
                    cpu = sum(server.cpu_times()[:2])
                    start = time.perf_counter()
                    send()
                    figures[side] = size / 1e6 / (time.perf_counter() - start)
                    figures[f"cpu_{side}"] = sum(server.cpu_times()[:2]) - cpu
                rounds.append(figures)
    finally:
        _stop(process)
    return rounds


# --- report ----------------------------------------------------------------------------------


def _search_lines(args: argparse.Namespace, found: SearchFigures, built: float) -> list[str]:
    (api_p50, api_p99), (page_p50, page_p99) = found.api, found.page
    ratio = page_p99 / api_p99
    return [
        f"Search at {args.items:,} items (the corpus of bench/search.py"
        + (f", built and indexed in {built:.0f} s" if built else ", reused")
        + f"; {found.in_scope:,} items in the lawyer's scope), {found.count} queries"
        f" per side in blocks of {BLOCK}, alternating which side goes first; client wall time"
        " per request on loopback, ms:\n",
        "| side | p50 | p99 | server CPU per request |",
        "| --- | ---: | ---: | ---: |",
        f"| `POST /v1/search` (JSON) | {api_p50:.1f} | {api_p99:.1f} | {found.cpu_api:.1f} ms |",
        f"| `POST /search` (results page) | {page_p50:.1f} | {page_p99:.1f} |"
        f" {found.cpu_page:.1f} ms |",
        f"| ratio page / API | {page_p50 / api_p50:.2f} | {ratio:.2f} (target <= 1.5,"
        f" {'met' if ratio <= 1.5 else 'not met'}) |"
        f" {found.cpu_page / found.cpu_api:.2f} |",
        "",
    ]


def _deposit_lines(args: argparse.Namespace, rounds: list[dict[str, float]]) -> list[str]:
    lines = [
        f"Deposit of {args.size_mib} MiB, {args.runs} rounds (API, then the form, then tus);"
        " ratios to the round's API deposit; MB/s and server CPU seconds are the medians:\n",
        "| way in | MB/s | server CPU | ratio to API (target >= 0.8), median | per round |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for side, name in (
        ("api", "`POST /v1/cases/{case}/items` (raw body)"),
        ("form", "`POST /deposit` (the form, multipart)"),
        (
            "tus",
            f"`/uploads` (tus, {args.tus_piece_mib} MiB PATCHes"
            + (", as upload.js)" if args.tus_piece_mib * MIB == UPLOAD_JS_PIECE else ")"),
        ),
    ):
        ratios = [r[side] / r["api"] for r in rounds]
        lines.append(
            f"| {name} | {statistics.median(r[side] for r in rounds):,.0f} |"
            f" {statistics.median(r[f'cpu_{side}'] for r in rounds):.2f} s |"
            f" {statistics.median(ratios):.2f} | {', '.join(f'{x:.2f}' for x in ratios)} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="per side")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part", choices=("search", "deposit", "both"), default="both")
    parser.add_argument(
        "--keep", type=Path, help="build the search corpus here once and reuse it (delete it after)"
    )
    parser.add_argument("--tus-piece-mib", type=int, default=UPLOAD_JS_PIECE // MIB)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    global TUS_PIECE  # one setting of the run
    TUS_PIECE = args.tus_piece_mib * MIB
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="tvault-bench-web-", dir="/tmp"))
    sections: list[str] = []
    try:
        if args.part in ("search", "both"):
            home = (args.keep or work) / "vault"
            built = build_search_vault(home, args.items)
            sections += _search_lines(args, measure_search(home, args.queries, work), built)
        if args.part in ("deposit", "both"):
            sections += _deposit_lines(args, measure_deposit(args.size_mib, args.runs, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## web pages against the API (bench/web.py) — {stamp}\n",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, Python"
        f" {platform.python_version()}; load average {load_before[0]:.2f} before,"
        f" {load_after[0]:.2f} after; embedded vault (SQLite, local objects, tantivy), `tvault"
        f" serve` on loopback; `bench/web.py {' '.join(sys.argv[1:])}`.\n",
        *sections,
    ]
    report = "\n".join(lines)
    print(report)
    if args.append_results:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as out:
            out.write(report)


if __name__ == "__main__":
    main()
