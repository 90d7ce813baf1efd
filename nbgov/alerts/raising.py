"""Raising alerts: recorded, deduplicated, delivered to every sink, failures retried.

An alert (a failed, timed-out or kernel-dead review, a missed run, a policy breach) is recorded as
``alert_raised`` once per ``(job, reason, window)`` (the window is ``window_minutes`` long, an
hour by default), then delivered to each configured sink (:mod:`nbgov.alerts.sinks`). Each delivery is
recorded: ``alert_delivered``, or ``alert_delivery_failed`` with the error and when to try again
(1, 2, 4, ... minutes, at most an hour). :func:`retry_alerts` (run by the scheduler on every tick,
and by ``nbgov alerts retry``) tries again until the sink accepts it: nothing is dropped silently.
With no sinks configured the alert is still recorded.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from nbgov.alerts.sinks import LoadedAlerts, deliver
from nbgov.errors import DeliveryError
from nbgov.events import AlertDelivered, AlertDeliveryFailed, AlertRaised

if TYPE_CHECKING:
    from nbgov.ledger.facade import Ledger

__all__ = ["REASONS", "raise_alert", "retry_alerts"]

REASONS = ("failed", "timed_out", "kernel_died", "missed", "policy_breach")
MAX_RETRY_WAIT = 3600.0


def _window_start(now: dt.datetime, minutes: int) -> dt.datetime:
    seconds = minutes * 60
    epoch = int(now.timestamp()) // seconds * seconds
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _retry_wait(attempt: int) -> float:
    return float(min(60.0 * 2 ** (attempt - 1), MAX_RETRY_WAIT))


def raise_alert(
    ledger: Ledger,
    alerts: LoadedAlerts | None,
    *,
    reason: str,
    message: str,
    job: str | None = None,
    run_id: str | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Record an alert and deliver it; None when the same (job, reason, window) was already raised."""
    if reason not in REASONS:
        raise ValueError(f"unknown alert reason {reason!r}")
    now = now or dt.datetime.now(dt.UTC)
    minutes = alerts.config.window_minutes if alerts is not None else 60
    window = _window_start(now, minutes).isoformat()
    key = f"{job or '-'}|{reason}|{window}"
    seen = ledger.query("SELECT 1 FROM events WHERE type = 'alert_raised' AND (payload->>'key') = $k "
                        "LIMIT 1", {"k": key})
    if not seen.empty:
        return None
    names = alerts.config.sink_names() if alerts is not None else []
    alert_id = ledger.append(AlertRaised(key=key, reason=reason, message=message, job=job,
                                         run_id=run_id, window_start=window, sinks=names))
    ledger.ingest()
    body = {"key": key, "reason": reason, "message": message, "job": job, "run_id": run_id,
            "raised_at": now.isoformat(), "alert": alert_id}
    if alerts is not None:
        for name, sink in zip(names, alerts.config.sinks):
            _attempt(ledger, alert_id, name, sink, body, 1, now)
        ledger.ingest()
    return alert_id


def _attempt(ledger: Ledger, alert_id: str, name: str, sink: Any, body: dict[str, Any], attempt: int,
             now: dt.datetime) -> bool:
    try:
        deliver(sink, body)
    except DeliveryError as exc:
        retry = now + dt.timedelta(seconds=_retry_wait(attempt))
        ledger.append(AlertDeliveryFailed(alert=alert_id, sink=name, attempt=attempt, error=exc.message,
                                          retry_after=retry.isoformat()))
        return False
    ledger.append(AlertDelivered(alert=alert_id, sink=name, attempt=attempt))
    return True


def retry_alerts(ledger: Ledger, alerts: LoadedAlerts | None, *, now: dt.datetime | None = None) -> int:
    """Deliver again every alert whose last delivery to a sink failed and whose wait is over.

    Returns the number of deliveries tried. A sink no longer configured is skipped (its failures
    stay visible in ``alerts.failing``).
    """
    if alerts is None:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    pending = ledger.query("""
        SELECT d.alert, d.sink, max(d.attempt) AS attempt, arg_max(d.outcome, (d.event_time, d.seq)) AS last,
               arg_max(d.retry_after, (d.event_time, d.seq)) AS retry_after,
               any_value(a.payload) AS payload
        FROM alert_deliveries d JOIN events a ON a.event_id = d.alert AND a.type = 'alert_raised'
        GROUP BY d.alert, d.sink""")
    sinks = dict(zip(alerts.config.sink_names(), alerts.config.sinks))
    tried = 0
    import orjson

    for alert_id, name, attempt, last, retry_after, payload in zip(
            pending["alert"], pending["sink"], pending["attempt"], pending["last"], pending["retry_after"],
            pending["payload"]):
        if last != "failed" or name not in sinks or retry_after.to_pydatetime() > now:
            continue
        raised = orjson.loads(payload)
        body = {"key": raised["key"], "reason": raised["reason"], "message": raised["message"],
                "job": raised.get("job"), "run_id": raised.get("run_id"), "alert": alert_id,
                "retry": int(attempt) + 1}
        _attempt(ledger, str(alert_id), str(name), sinks[str(name)], body, int(attempt) + 1, now)
        tried += 1
    if tried:
        ledger.ingest()
    return tried
