"""HTML of the fleet page and of one repo's history: server-rendered, every value escaped, links to the
Airflow UI open in the top window (the page is shown inside Airflow's own frame)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from clone.ui.charts import fleet_charts
from clone.workflow.fleet_record import compact_tokens

STYLE = """body{font:13px system-ui,sans-serif;margin:12px;color:#1a202c}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e2e8f0;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f7fafc}
.state-failing,.state-failed,.ci-failure{color:#c53030;font-weight:600}.state-stalled,.state-lease,.state-paused,
.state-budget,.state-deadline{color:#b7791f;font-weight:600}.state-disabled{color:#718096}.ci-success{color:#2f855a}
.chart{width:100%;max-width:720px;display:block}h2{font-size:14px;margin:14px 0 4px}.muted{color:#718096}
.summary span{margin-right:14px}"""


def _a(url: Any, text: str) -> str:
    return f'<a href="{escape(str(url))}" target="_top">{escape(text)}</a>' if url else escape(text)


def _count(n: Any, noun: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _cost(value: Any) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _row(row: Mapping[str, Any], prefix: str) -> str:
    links = row.get("links") or {}
    sha = str(row.get("sha") or "")[:10]
    incidents = row.get("incidents") or []
    history = prefix + "/repos/" + quote(row["repo"], safe="")
    return "".join([
        f'<tr data-repo="{escape(row["repo"])}" data-state="{escape(row["state"])}">',
        f'<td>{_a(history, row["repo"])}</td>',
        f'<td class="state-{escape(row["state"])}" data-col="state">{escape(row["state"])}'
        f'{"<br><span class=muted>" + escape(row["reason"]) + "</span>" if row.get("reason") else ""}</td>',
        f'<td data-col="when">{escape(row.get("when") or "never")}</td>',
        f'<td data-col="outcome">{escape(str(row.get("outcome")))}</td>',
        f'<td data-col="commits">{row.get("commits", 0)}{" <code>" + escape(sha) + "</code>" if sha else ""}</td>',
        f'<td data-col="links">{_a(links.get("run"), "run")} {_a(links.get("log"), "log")}'
        f'{" " + _a(row.get("pull_url"), "PR") if row.get("pull_url") else ""}</td>',
        f'<td class="ci-{escape(str(row.get("ci")))}" data-col="ci">{_a(row.get("ci_url"), str(row.get("ci")))}</td>',
        f'<td data-col="autofix">{row.get("autofix", 0)}</td>',
        f'<td data-col="incidents" title="{escape("; ".join(incidents))}">{len(incidents)}</td>',
        f'<td data-col="tokens_7d">{compact_tokens(row.get("tokens_7d", 0))}</td>',
        f'<td data-col="tokens_30d">{compact_tokens(row.get("tokens_30d", 0))}</td>',
        f'<td data-col="cost">{_cost(row.get("cost_7d"))} / {_cost(row.get("cost_30d"))}</td></tr>'])


def _ideas(ideas: Sequence[Mapping[str, Any]]) -> str:
    if not ideas:
        return "<p class=muted>No idea runs recorded.</p>"
    head = "<tr><th>idea</th><th>status</th><th>last_error</th><th>retry at</th><th>repo</th></tr>"
    rows = [f'<tr data-idea="{escape(str(i["id"]))}"><td>{escape(str(i["id"]))} '
            f'<span class=muted>{escape(str(i.get("title") or ""))}</span></td>'
            f'<td class="state-{escape(str(i.get("status")).lower())}">{escape(str(i.get("status")))}</td>'
            f'<td>{escape(str(i.get("last_error") or ""))}</td><td>{escape(str(i.get("retry_at") or ""))}</td>'
            f'<td>{escape(str(i.get("repo_name") or "")) if i.get("status") == "ACTIVE" else ""}'
            f'{" (" + escape(str(i["github"])) + ")" if i.get("status") == "ACTIVE" and i.get("github") else ""}'
            f'</td></tr>' for i in ideas]
    return f'<table id="ideas">{head}{"".join(rows)}</table>'


def fleet_page(data: Mapping[str, Any], prefix: str) -> str:
    """The whole page from the data endpoint's answer (see :func:`clone.ui.app.fleet_data`)."""
    rows = data["repos"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    head = ("<tr><th>repo</th><th>state</th><th>last pass</th><th>outcome</th><th>commits</th><th>links</th>"
            "<th>CI</th><th>autofix</th><th>incidents</th><th>tokens 7d</th><th>tokens 30d</th><th>cost 7d / 30d</th></tr>")
    summary = " ".join(f"<span>{escape(k)}: <b>{v}</b></span>" for k, v in sorted(counts.items()))
    paused = "<p class=state-paused>The kill switch is on (clone_paused=true).</p>" if data.get("paused") else ""
    body = (f"<h1>Clone fleet</h1>{paused}<p class=summary>{len(rows)} repos {summary} "
            f'<span class=muted>{_count(data["runs"], "run")} in the last {_count(data["days"], "day")}; '
            f'<a href="{prefix}/api/fleet">JSON</a></span></p>'
            f'<table id="fleet">{head}{"".join(_row(r, prefix) for r in rows)}</table>'
            f'{fleet_charts(data["series"])}<h2>Ideas</h2>{_ideas(data["ideas"])}')
    return _page("Clone fleet", body)


def repo_page(repo: str, history: Sequence[Mapping[str, Any]], prefix: str) -> str:
    """One repo's recorded passes, newest first."""
    head = ("<tr><th>when</th><th>outcome</th><th>commits</th><th>CI</th><th>autofix</th><th>tokens</th>"
            "<th>skip / failure</th><th>incidents</th><th>links</th></tr>")
    rows = []
    for h in history:
        why = h.get("skip_reason") or (f'{h["failed_step"]} failed' if h.get("failed_step") else "")
        links = h.get("links") or {}
        rows.append(f'<tr data-run="{escape(h["run_id"])}"><td>{escape(h["when"])}</td>'
                    f'<td>{escape(str(h.get("outcome")))}</td><td>{h.get("commits") or 0}</td>'
                    f'<td class="ci-{escape(str(h.get("ci")))}">{_a(h.get("ci_url"), str(h.get("ci")))}</td>'
                    f'<td>{h.get("autofix") or 0}</td><td>{h.get("tokens") or 0}</td><td>{escape(str(why))}</td>'
                    f'<td>{escape("; ".join(h.get("incidents") or []))}</td>'
                    f'<td>{_a(links.get("run"), "run")} {_a(links.get("log"), "log")}</td></tr>')
    body = (f'<p><a href="{prefix}/">&larr; fleet</a></p><h1>{escape(repo)}</h1>'
            f'<table id="history">{head}{"".join(rows)}</table>'
            + ("" if history else "<p class=muted>No recorded pass.</p>"))
    return _page(f"Clone: {repo}", body)
