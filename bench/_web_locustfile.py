"""Locust users of the workspace load test: run by ``bench/web_load.py`` as a subprocess, never imported.

Importing locust patches the standard library with gevent (``gevent.monkey.patch_all``), so only the
locust process imports this file: the harness and the tests talk to it through a plan file
(``ZHAOSHANG_LOAD_PLAN``, JSON written by ``bench/web_load.py``) and read its CSV statistics.

The plan says who logs in (accounts of each role, handed out in turn), what each visits (endpoints
with a path template, a weight and the roles that may use it) and the values the templates draw
from (project ids visible to each account, parks, industries, stages, parcel ids, match
requirements). Every request is checked against the statuses its endpoint expects; anything else
(a 404 of a page not built yet, a 403, a redirect to the login page, a 5xx) is a failure in
locust's statistics with the status as its reason: reported, never the end of the run.

Logging in is measured apart: once every user has logged in, the login figures go to
``<csv prefix>_final_logins.json``, the statistics are reset and browsing is measured for
``duration_s`` of the plan. Bounded in time by that (and by ``-t``, the harness's hard limit, which
includes the time to log in) and in count by ``max_requests`` (the run stops once that many requests
were made).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gevent
from locust import HttpUser, between, constant, events, task
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

PLAN: dict[str, Any] = json.loads(Path(os.environ["ZHAOSHANG_LOAD_PLAN"]).read_text(encoding="utf-8"))
ACCOUNTS = itertools.cycle(PLAN["accounts"])
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PLACEHOLDER = re.compile(r"\{(\w+)\}")
_made = itertools.count(1)
_logged_in = itertools.count(1)
_env: list[Environment] = []
LOGIN_NAMES = ("GET /login", "POST /login", "GET (landing after login)")


@events.init.add_listener
def _keep_environment(environment: Environment, **_kw: Any) -> None:
    _env.append(environment)


@events.request.add_listener
def _bound_by_count(**_kw: Any) -> None:
    """Stop the whole run after ``max_requests`` requests (bounded in count as well as in time)."""
    if next(_made) == PLAN["max_requests"] and _env and _env[0].runner is not None:
        gevent.spawn(_env[0].runner.quit)


@events.quitting.add_listener
def _final_csv(environment: Environment, **_kw: Any) -> None:
    """The final statistics as ``<csv prefix>_final_{stats,failures}.csv``: locust rewrites its own
    CSV files once a second while running and not again at the end, so they miss the last second."""
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if not prefix:
        return
    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for part, write in (("stats", writer.requests_csv), ("failures", writer.failures_csv)):
        with open(f"{prefix}_final_{part}.csv", "w", newline="", encoding="utf-8") as fh:
            write(csv.writer(fh))


def _login_done(environment: Environment) -> None:
    """Once every user has logged in: keep the login figures, reset the statistics and measure
    browsing alone for ``duration_s`` (Argon2 is slow by design; a session lasts hours, so the
    logins of 20 people arriving at once are not what a page costs)."""
    if next(_logged_in) != PLAN["users"]:
        return
    stats = environment.stats
    logins = {}
    for name in LOGIN_NAMES:
        for (entry_name, _method), entry in stats.entries.items():
            if entry_name == name and entry.num_requests:
                logins[name] = {
                    "requests": entry.num_requests,
                    "failures": entry.num_failures,
                    "p50": entry.get_response_time_percentile(0.5),
                    "p95": entry.get_response_time_percentile(0.95),
                    "max": entry.max_response_time,
                }
    prefix = getattr(environment.parsed_options, "csv_prefix", None) or "locust"
    started = time.time()
    Path(f"{prefix}_final_logins.json").write_text(
        json.dumps({"logins": logins, "login_phase_s": started - _started[0], "measured_from": started}), encoding="utf-8"
    )
    stats.reset_all()
    if environment.runner is not None:
        gevent.spawn_later(PLAN["duration_s"], environment.runner.quit)


_started = [time.time()]


def _wait() -> Any:
    low, high = PLAN["think_s"]
    return constant(0) if high <= 0 else between(low, high)


class WorkspaceUser(HttpUser):
    """One person: logs in as the next account of the plan, then browses what that role may see."""

    wait_time = _wait()

    def on_start(self) -> None:
        self.account: dict[str, Any] = next(ACCOUNTS)
        self.rng = random.Random()
        role = self.account["role"]
        self.endpoints = [e for e in PLAN["endpoints"] if role in e["roles"]]
        self.weights = [e["weight"] for e in self.endpoints]
        unit = self.account.get("unit")
        self.project_ids: list[str] = PLAN["projects_by_unit"].get(unit, []) if unit else PLAN["projects_all"]
        self.csrf = ""
        try:
            self._login()
        finally:
            _login_done(self.environment)

    def _login(self) -> None:
        form = self.client.get("/login", name="GET /login")
        found = CSRF.search(form.text)
        data = {
            "username": self.account["username"],
            "password": self.account["password"],
            "csrf_token": found.group(1) if found else "",
        }
        with self.client.post("/login", data=data, name="POST /login", allow_redirects=False, catch_response=True) as r:
            if r.status_code != 303 or "/login" in r.headers.get("location", ""):
                r.failure(f"login of {self.account['username']} refused: HTTP {r.status_code}")
                return
            r.success()
            landing = r.headers.get("location", "/dashboard")
        # The page a browser lands on after logging in; it carries the session's CSRF token (writes).
        with self.client.get(landing, name="GET (landing after login)", catch_response=True) as r:
            found = CSRF.search(r.text)
            if found:
                self.csrf = found.group(1)
            if r.status_code in (200, 404) and found:  # 404: the dashboard is not built yet (the probe reports it)
                r.success()
            else:
                r.failure(f"landing page: HTTP {r.status_code}, CSRF token {'found' if found else 'missing'}")

    def _value(self, key: str) -> Any:
        if key == "project_id":
            return self.rng.choice(self.project_ids) if self.project_ids else "none"
        if key == "page":
            return self.rng.randint(1, PLAN["pages"])
        choices = PLAN["values"][key]
        return self.rng.choice(choices)

    def _fill(self, template: str) -> str:
        return PLACEHOLDER.sub(lambda m: quote(str(self._value(m.group(1))), safe=""), template)

    @task
    def browse(self) -> None:
        endpoint = self.rng.choices(self.endpoints, self.weights)[0]
        path = self._fill(endpoint["path"])
        kwargs: dict[str, Any] = {"name": endpoint["name"], "allow_redirects": False, "catch_response": True}
        if endpoint["method"] != "GET":
            kwargs["headers"] = {"X-CSRF-Token": self.csrf}
        body = endpoint.get("json")
        if body is not None:
            kwargs["json"] = self._value(body[1:-1]) if isinstance(body, str) and body.startswith("{") else body
        with self.client.request(endpoint["method"], path, **kwargs) as r:
            if r.status_code in endpoint["expect"]:
                r.success()
            else:
                where = r.headers.get("location", "")
                r.failure(f"HTTP {r.status_code}" + (f" → {where}" if where else ""))
