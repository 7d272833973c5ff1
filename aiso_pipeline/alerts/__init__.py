"""Alerts: one log line each, and a Slack-compatible POST to $AISO_ALERT_WEBHOOK when it is set.

Delivery retries transient failures (connection errors, timeouts, HTTP 429 and 5xx) with exponential backoff, a
bounded number of times; a 4xx other than 429 is a configuration problem and is not retried. `Ledger` remembers
which alerts were sent, so an anomaly is alerted once (again only if its severity rises), within a bounded horizon.
Plain Python; the Dagster sensors that call this live in aiso_pipeline/defs/orchestration.py.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

WEBHOOK_ENV = "AISO_ALERT_WEBHOOK"
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
ICON = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    severity: str  # info | warning | critical
    title: str  # one line
    details: str = ""  # more lines (Slack mrkdwn)
    context: str = ""  # small print: ids, links

    @property
    def text(self) -> str:
        return f"[{self.severity}] {self.title}"


def _slack_escape(text: str) -> str:
    """Title and details carry model and feature names from landing files: Slack reads `<!channel>`,
    `<https://x|label>` and `<@U123>` in them as a mention or a link, so `&`, `<`, `>` are escaped as Slack asks.
    (The context line is ours, with its <url|label> links, and stays as it is.)"""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict:
    """Slack incoming-webhook JSON: `text` is the fallback (and what non-Slack receivers read), blocks the layout."""
    title = " ".join(_slack_escape(alert.text).splitlines())  # one line: a newline in a model name ends the bold
    body = f"{ICON.get(alert.severity, '')} *{title}*"
    if alert.details:
        body += "\n" + _slack_escape(alert.details)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}}]
    if alert.context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": alert.context[:2000]}]})
    return {"text": title, "blocks": blocks}


class DeliveryError(Exception):
    """The webhook did not accept the alert after the allowed attempts."""


@dataclass(frozen=True)
class Retry:
    attempts: int = 4  # in total, first try included
    backoff_seconds: float = 0.5  # wait before the 2nd attempt; doubles each time
    max_backoff_seconds: float = 8.0  # cap on one wait, also on a server's Retry-After
    timeout_seconds: float = 5.0  # per request


def check_url(url: str) -> str:
    """The webhook URL, if it is one; else a DeliveryError that never shows it (it holds the secret)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url) or \
            any(ord(c) < 32 or ord(c) == 127 for c in url):
        shown = f"{parts.scheme}://{parts.hostname}" if parts.scheme in ("http", "https") and parts.hostname else \
            "a value"
        raise DeliveryError(f"{WEBHOOK_ENV} is not an http(s) URL without spaces ({shown} ...; the rest is not shown, "
                            f"it is a secret): fix the variable")
    return url


def post_json(url: str, payload: dict, retry: Retry = Retry(),
              sleep: Callable[[float], None] = time.sleep) -> int:
    """POST `payload` as JSON; retry transient failures. Returns the attempts used; raises DeliveryError, whose
    message never holds the URL (a webhook URL is its own secret)."""
    check_url(url)
    data = json.dumps(payload).encode()
    problem = ""
    for attempt in range(1, retry.attempts + 1):
        wait = min(retry.backoff_seconds * 2 ** (attempt - 1), retry.max_backoff_seconds)
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "aiso-pipeline"})
        try:
            with urllib.request.urlopen(request, timeout=retry.timeout_seconds) as response:
                response.read()
            return attempt
        except urllib.error.HTTPError as e:
            problem = f"HTTP {e.code} {e.reason}"
            if e.code != 429 and e.code < 500:
                raise DeliveryError(f"webhook refused the alert: {problem} (check {WEBHOOK_ENV})") from e
            retry_after = e.headers.get("Retry-After") if e.headers else None
            if retry_after and retry_after.strip().isdigit():
                wait = min(float(retry_after), retry.max_backoff_seconds)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            problem = str(getattr(e, "reason", e)).replace(url, "<webhook>")
        except (ValueError, http.client.HTTPException) as e:  # urllib's own words may quote the URL: not kept
            raise DeliveryError(f"the webhook URL in {WEBHOOK_ENV} is not usable ({type(e).__name__}): fix the "
                                f"variable") from None
        if attempt < retry.attempts:
            sleep(wait)
    raise DeliveryError(f"webhook failed {retry.attempts} times, last: {problem}")


def webhook_url() -> str | None:
    """$AISO_ALERT_WEBHOOK, read when an alert is sent (so a changed .env needs no code reload)."""
    return os.environ.get(WEBHOOK_ENV, "").strip() or None


def send(alert: Alert, logger: logging.Logger | None = None, retry: Retry = Retry()) -> None:
    """Log the alert (always), then POST it to $AISO_ALERT_WEBHOOK if that is set.

    Raises DeliveryError when the webhook does not take it: the caller decides whether to try again later.
    """
    logger = logger or log
    line = f"ALERT {alert.text}" + (f" | {alert.details}" if alert.details else "")
    (logger.error if alert.severity == "critical" else logger.warning)(line.replace("\n", " | "))
    url = webhook_url()
    if url:
        post_json(url, slack_payload(alert), retry)


SHARES = {"error_rate", "fallback_rate", "join_rate", "dataset_drift"}  # shown as percentages


def _fmt(metric: str, x) -> str:
    if x is None:
        return "n/a"
    if metric in SHARES:
        return f"{x:.1%}"
    if metric.startswith("cost"):
        return f"${x:,.4g}"
    return f"{x:,.4g}" + (" ms" if metric.endswith("_ms") else "")


def _where(row: dict) -> str:
    return row["model"] + (f" / {row['feature']}" if row.get("feature") else "")


def _context(ids: list[str], ui_url: str | None) -> str:
    context = f"anomaly_id {', '.join(ids)} · marts.anomalies"
    if ui_url:
        context += f" · <{ui_url.rstrip('/')}/assets/marts/anomalies|open in Dagster>"
    return context


def anomaly_alert(row: dict, ui_url: str | None = None) -> Alert:
    """An alert for one marts.anomalies row (as a dict of its columns)."""
    metric = row["metric"]
    if row["kind"] == "drift":
        return drift_alert([row], ui_url)
    title = f"{metric} {row['kind']} on {_where(row)} for {row['dt']}: {_fmt(metric, row['value'])}"
    if row["kind"] == "parity":
        details = (f"the rest of the model: {_fmt('success_rate', row.get('baseline'))}; worse than "
                   f"{_fmt('success_rate', row.get('threshold'))} (the rest minus the margin), Benjamini-Hochberg "
                   "adjusted")
    else:
        details = (f"baseline (trailing median) {_fmt(metric, row.get('baseline'))}, threshold "
                   f"{_fmt(metric, row.get('threshold'))}, robust z {row['z_score']:+.1f}"
                   if row.get("z_score") is not None else "")
    return Alert(row["severity"], title, details, _context([row["anomaly_id"]], ui_url))


def drift_alert(rows: list[dict], ui_url: str | None = None) -> Alert:
    """One alert for a model's drift on one day: its new drifted columns (and dataset drift), worst first."""
    rows = sorted(rows, key=lambda r: (r["metric"] != "dataset_drift", -(r.get("score") or 0), r["metric"]))
    first = rows[0]
    columns = [r for r in rows if r["metric"] != "dataset_drift"]
    dataset = next((r for r in rows if r["metric"] == "dataset_drift"), None)
    title = f"drift on {_where(first)} for {first['dt']}: "
    title += (f"{_fmt('dataset_drift', dataset['value'])} of input columns drifted (dataset drift)" if dataset
              else f"{len(columns)} input column{'s' if len(columns) != 1 else ''} drifted")
    lines = [f"{r['metric'].removeprefix('drift:')}: {r['value']:.3g} against threshold {r['threshold']:.3g}"
             f" ({r['severity']})" for r in columns if r.get("value") is not None and r.get("threshold") is not None]
    severity = max((r["severity"] for r in rows), key=lambda x: SEVERITY_RANK.get(x, 0))
    return Alert(severity, title, "\n".join(lines), _context([r["anomaly_id"] for r in rows], ui_url))


def alert_units(rows: list[dict]) -> list[tuple[str, date, str, list[dict]]]:
    """(ledger key, day, severity, rows) of each alert due for these marts.anomalies rows: one per anomaly, but
    drift once per model and day, for the rows that open an episode (a column still drifting, or drifting again
    within the reference window, continues its episode and is not alerted again)."""
    units: list[tuple[str, date, str, list[dict]]] = []
    drift: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["kind"] != "drift":
            units.append((r["anomaly_id"], r["dt"], r["severity"], [r]))
        elif r.get("episode_start") in (None, r["dt"]):
            drift.setdefault((r["dt"], r["model"]), []).append(r)
    for (day, model), group in drift.items():
        severity = max((r["severity"] for r in group), key=lambda x: SEVERITY_RANK.get(x, 0))
        key = "drift:" + hashlib.md5(f"{day}|{model}".encode()).hexdigest()[:16]
        units.append((key, day, severity, group))
    return sorted(units, key=lambda u: (u[1], -SEVERITY_RANK.get(u[2], 0), u[0]))


def error_summary(error) -> str:
    """One line from a Dagster error (SerializableErrorInfo: message, cls_name, cause): the AisoError in the
    cause chain if there is one (it says what to do), else the innermost cause."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    if not chain:
        return "unknown error"
    chosen = next((e for e in chain if e.cls_name == "AisoError"), chain[-1])
    lines = [line for line in (chosen.message or "").strip().splitlines() if line.strip()]
    if not lines:
        return chosen.cls_name
    # an AisoError's last line is its message; another error's first line says what happened (not a "See also")
    return lines[-1].removeprefix("aiso_pipeline.errors.AisoError: ") if chosen.cls_name == "AisoError" else lines[0]


def run_failure_alert(job: str, run_id: str, partition: str | None, message: str, ui_url: str | None = None) -> Alert:
    title = f"run of {job}" + (f" for {partition}" if partition else "") + " failed"
    context = f"run {run_id}"
    if ui_url:
        context += f" · <{ui_url.rstrip('/')}/runs/{run_id}|open in Dagster>"
    return Alert("critical", title, message, context)


class Ledger:
    """Which alerts were sent: {key: [day, severity rank]}, kept for `horizon_days` before the newest day seen.

    Serialised as the sensor cursor, so it is bounded: keys about days older than the horizon are forgotten (and
    anomalies that old are not alerted at all, see `wants`).
    """

    def __init__(self, cursor: str | None, horizon_days: int):
        self.horizon_days = horizon_days
        self.sent: dict[str, list] = json.loads(cursor)["sent"] if cursor else {}

    def wants(self, key: str, day: date, severity: str, newest: date) -> bool:
        """Alert `key` about `day`? Not if sent before at this severity or higher, or if older than the horizon."""
        if day < newest - timedelta(days=self.horizon_days):
            return False
        sent = self.sent.get(key)
        return sent is None or SEVERITY_RANK.get(severity, 0) > sent[1]

    def record(self, key: str, day: date, severity: str) -> None:
        self.sent[key] = [day.isoformat(), SEVERITY_RANK.get(severity, 0)]

    def cursor(self, newest: date | None) -> str:
        if newest is not None:
            oldest = (newest - timedelta(days=self.horizon_days)).isoformat()
            self.sent = {k: v for k, v in self.sent.items() if v[0] >= oldest}
        return json.dumps({"sent": self.sent}, sort_keys=True, separators=(",", ":"))
