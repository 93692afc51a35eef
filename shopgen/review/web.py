"""The review page: Starlette with Jinja2 templates (autoescaped), no front-end build, one small
inline script for the keyboard. Loopback needs no sign-in; bound elsewhere it asks for the token
printed at start or a review.users password. Every form POST carries a CSRF token bound to the
browser's session cookie; pages send a Content-Security-Policy that runs only our own script."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from shopgen.core.content import CONTENT_TYPES
from shopgen.review.decide import Desk, Refused, Unpublished, edit_as_text, hard_checks, parse_edit
from shopgen.review.highlight import marks, product_facts
from shopgen.review.queue import BUCKETS, FILTERS, PAGE
from shopgen.review.records import REASON_HELP, REJECT_REASONS
from shopgen.review.store import Conflict
from shopgen.state.store import StateStore

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SID, USER = "sg_sid", "sg_user"


def hash_password(password: str, salt: str | None = None, rounds: int = 600_000) -> str:
    salt = salt or secrets.token_hex(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return f"pbkdf2_sha256${rounds}${salt}${dk.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        algo, rounds, salt, want = stored.split("$")
        int(rounds)
    except ValueError:
        return False
    if algo != "pbkdf2_sha256":
        return False
    return same(hash_password(password, salt, int(rounds)).split("$")[3], want)


def same(a: str, b: str) -> bool:
    """Constant-time equality of two untrusted strings (any characters)."""
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


@dataclass
class Auth:
    """None of token and users: no sign-in (loopback). The secret signs cookies and CSRF tokens."""

    token: str | None = None
    users: dict[str, str] = field(default_factory=dict)  # name -> password hash
    reviewer: str = "local"
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def required(self) -> bool:
        return bool(self.token or self.users)

    def sign(self, value: str) -> str:
        return hmac.new(self.secret, value.encode(), "sha256").hexdigest()[:32]

    def csrf(self, sid: str) -> str:
        return self.sign(f"csrf|{sid}")

    def user_cookie(self, name: str) -> str:
        return f"{name}|{self.sign('user|' + name)}"

    def user(self, request: Request) -> str | None:
        if not self.required:
            return self.reviewer
        raw = request.cookies.get(USER) or ""
        name, _, sig = raw.rpartition("|")
        return name if name and same(sig, self.sign("user|" + name)) else None

    def login(self, form: dict[str, str]) -> str | None:
        if self.token and same(form.get("token", ""), self.token):
            return "token"
        name = form.get("user", "")
        if name in self.users and check_password(form.get("password", ""), self.users[name]):
            return name
        return None


MAX_POSITION = 10 ** 9  # SQLite offsets are 64-bit; a larger page or position from a URL is no page


def _position(raw: str | None) -> int:
    try:
        return min(max(0, int(raw or "0")), MAX_POSITION)
    except ValueError:
        return 0


def _page_args(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in FILTERS}


def _default_filters(args: dict[str, str], request: Request) -> dict[str, str]:
    """The queue opens on what waits for a person: pending published texts."""
    for k, v in (("decision", "pending"), ("status", "published")):
        if k not in request.query_params:
            args[k] = v
    return args


class Pages:
    """The page handlers over one Desk."""

    def __init__(self, desk: Desk, store: StateStore, auth: Auth):
        import jinja2

        self.desk, self.store, self.auth = desk, store, auth
        # autoescape for every template: select_autoescape would miss the .html.j2 names.
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                 autoescape=True)
        self.templates = Jinja2Templates(env=env)

    def session(self, request: Request) -> tuple[str, bool]:
        sid = request.cookies.get(SID)
        return (sid, False) if sid and len(sid) == 32 else (secrets.token_hex(16), True)

    def render(self, request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
        sid, new = self.session(request)
        nonce = secrets.token_urlsafe(12)
        ctx = {**ctx, "csrf": self.auth.csrf(sid), "nonce": nonce, "user": self.auth.user(request), "request": request}
        resp = self.templates.TemplateResponse(request, name, ctx, status_code=status)
        resp.headers["Content-Security-Policy"] = (f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                                   "style-src 'unsafe-inline'; form-action 'self'; "
                                                   "frame-ancestors 'none'; base-uri 'none'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        if new:
            resp.set_cookie(SID, sid, httponly=True, samesite="strict")
        return resp

    async def form_of(self, request: Request) -> dict[str, str] | Response:
        """The POSTed form, or a 403 when its CSRF token is missing or not this session's."""
        form = await request.form()
        sid = request.cookies.get(SID) or ""
        token = str(form.get("csrf") or "")
        if not sid or not same(token, self.auth.csrf(sid)):
            return PlainTextResponse("refused: missing or invalid CSRF token; reload the page", status_code=403)
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return PlainTextResponse("refused: a form from another site", status_code=403)
        return {k: str(v) for k, v in form.items()}

    def gate(self, request: Request) -> Response | None:
        if self.auth.user(request) is None:
            return RedirectResponse("/login", status_code=303)
        return None

    def sync(self) -> None:
        self.desk.queue.sync()

    async def queue(self, request: Request) -> Response:
        if (r := self.gate(request)) is not None:
            return r
        self.sync()
        args = _default_filters(_page_args(request), request)
        page = _position(request.query_params.get("page"))
        items, total = self.desk.queue.page(args, page)
        menus = {k: self.desk.queue.values(k) for k in ("locale", "category", "run")}
        menus.update(type=list(CONTENT_TYPES), status=["published", "edited", "rejected_by_review", "none"],
                     decision=["pending", "approve", "reject", "edit"])
        q = dict(args)  # a blank filter ("all") stays in the links, or the defaults would come back
        return self.render(request, "queue.html.j2", {
            "items": items, "total": total, "page": page, "pages": max(1, -(-total // PAGE)), "args": args,
            "menus": menus, "qs": urlencode(q), "first": page * PAGE, "buckets": BUCKETS,
            "prev_qs": urlencode({**q, "page": page - 1}), "next_qs": urlencode({**q, "page": page + 1}),
            "counts": self.desk.queue.counts()})

    def item_context(self, request: Request, sku: str, t: str, i: int, args: dict[str, str]) -> dict[str, Any] | None:
        it = self.desk.queue.get(sku, t)
        if it is None:
            return None
        facts = product_facts(it.doc)
        pieces = []
        for name, v in it.text.items():
            vals = v if isinstance(v, list) else [v] if v else []
            for x in vals:
                if isinstance(x, dict):
                    pieces.extend((f"{name} {k}", marks(str(x.get(k) or ""), facts)) for k in ("question", "answer"))
                else:
                    pieces.append((name, marks(str(x), facts)))
        q = dict(args)
        nxt, prv = self.desk.queue.at(args, i + 1), self.desk.queue.at(args, i - 1)
        # `content` names the item's type: `type` is the queue's filter of the same name.
        link = (lambda x, j: f"/item?{urlencode({**q, 'sku': x.sku, 'content': x.type, 'i': j})}" if x else None)
        checks = stored_checks(sku, t, it.status, it.text, it.doc, self.desk)
        return {"it": it, "facts": facts, "pieces": pieces, "checks": checks,
                "history": list(reversed(self.desk.decisions.history(sku, t))), "reasons": REJECT_REASONS,
                "reason_help": REASON_HELP, "edit": edit_as_text(t, it.text), "i": i, "qs": urlencode(q),
                "next": link(nxt, i + 1), "prev": link(prv, i - 1), "args": args, "message": None}

    async def item(self, request: Request) -> Response:
        if (r := self.gate(request)) is not None:
            return r
        self.sync()
        qp = request.query_params
        args = _default_filters(_page_args(request), request)
        i = _position(qp.get("i"))
        sku, t = qp.get("sku"), qp.get("content")
        if not sku or not t:
            it = self.desk.queue.at(args, i)
            if it is None:
                return RedirectResponse(f"/?{urlencode(args)}", status_code=303)
            sku, t = it.sku, it.type
        ctx = self.item_context(request, sku, t, i, args)
        if ctx is None:
            return PlainTextResponse(f"no item {sku}/{t}", status_code=404)
        return self.render(request, "item.html.j2", ctx)

    async def decide(self, request: Request) -> Response:
        if (r := self.gate(request)) is not None:
            return r
        form = await self.form_of(request)
        if isinstance(form, Response):
            return form
        sku, t, action = form.get("sku", ""), form.get("type", ""), form.get("action", "")
        args = {k: form.get(f"f_{k}", "") for k in FILTERS}
        i = _position(form.get("i"))
        try:
            base = int(form.get("base", "0"))
        except ValueError:
            return PlainTextResponse("bad form", status_code=400)
        if t not in CONTENT_TYPES:
            return PlainTextResponse("unknown content type", status_code=400)
        status, message = 200, None
        self.sync()  # a view older than the last night is refused, not decided on
        try:
            edit = parse_edit(t, {n: form.get(f"edit_{n}", "") for n in CONTENT_TYPES[t].fields()}) \
                if action == "edit" else None
            self.desk.decide(sku, t, action, reviewer=self.auth.user(request) or "?", base=base,
                             loaded=form.get("loaded", ""),
                        reason=form.get("reason") or None, note=form.get("note"), edit=edit)
        except Conflict as e:
            status, message = 409, f"conflict: {e}"
        except Refused as e:
            status, message = 422, f"not saved: {e}"
        except Unpublished as e:
            status, message = 502, str(e)
        if message is None:
            # The decided item leaves a pending queue, so the same position holds the next one.
            at = i if args.get("decision") == "pending" else i + 1
            return RedirectResponse(f"/item?{urlencode({**args, 'i': at})}", status_code=303)
        ctx = self.item_context(request, sku, t, i, args)
        if ctx is None:
            return PlainTextResponse(message, status_code=status)
        ctx["message"] = message
        if action == "edit":  # the draft stays on the page
            ctx["edit"] = {n: form.get(f"edit_{n}", "") for n in CONTENT_TYPES[t].fields()}
        return self.render(request, "item.html.j2", ctx, status)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html.j2", {"users": bool(self.auth.users),
                                                          "token": bool(self.auth.token),
                                                     "message": None})
        form = await self.form_of(request)
        if isinstance(form, Response):
            return form
        name = await run_in_threadpool(self.auth.login, form)  # PBKDF2: off the event loop
        if name is None:
            return self.render(request, "login.html.j2", {"users": bool(self.auth.users),
                                                          "token": bool(self.auth.token),
                                                     "message": "wrong token or password"}, 401)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(USER, self.auth.user_cookie(name), httponly=True, samesite="strict")
        return resp

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

def make_app(desk: Desk, store: StateStore, auth: Auth, hosts: list[str] | None = None) -> Starlette:
    """hosts: the Host headers served (None: loopback names only, so a page on another site that
    rebinds its name to 127.0.0.1 gets nothing)."""
    p = Pages(desk, store, auth)
    allowed = hosts or ["127.0.0.1", "localhost", "[::1]", "::1"]
    return Starlette(middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed)], routes=[Route("/", p.queue), Route("/item", p.item), Route("/decide", p.decide, methods=["POST"]),
                             Route("/login", p.login, methods=["GET", "POST"]), Route("/healthz", p.health)])


def stored_checks(sku: str, t: str, status: str, text: dict[str, Any], doc: dict[str, Any],
                  desk: Desk) -> list[dict[str, Any]]:
    """The gate's results for the published text, as the night that made it stored them; for an
    edit, the hard checks it passed."""
    if status == "edited":
        return [{"check": c.check, "passed": c.passed, "details": c.details}
                for c in hard_checks(t, text, doc, desk.settings)]
    try:
        e = desk.queue.entries(sku).get(t)
        if e is None or not e.uri:
            return [{"check": "gate", "passed": False, "details": list(e.reasons if e else [])}]
        rows = desk.queue.store.read_where(e.uri, "sku", [sku], ["sku", "qa"]).to_pylist()
        qa = json.loads(rows[0]["qa"] or "{}").get(t, {}) if rows else {}
        return [{"check": c["check"], "passed": c["passed"], "details": c.get("details") or []}
                for c in qa.get("checks", [])]
    except (OSError, ValueError, KeyError) as e:
        return [{"check": "gate", "passed": False, "details": [f"results unreadable: {type(e).__name__}"]}]


def serve(app: Starlette, host: str, port: int, log: Path) -> None:
    """uvicorn in this process; its chatter goes to the log file, not the console."""
    import logging

    import uvicorn

    log.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.propagate = False
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, server_header=False)


__all__ = ["LOOPBACK", "Auth", "check_password", "hash_password", "make_app", "serve"]
