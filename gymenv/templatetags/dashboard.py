"""Filters the dashboard's templates share: short run ids, times to the second, durations."""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def short_id(value) -> str:
    return str(value)[:8]


@register.filter
def to_second(value) -> str:
    """An ISO 8601 time (as the ledger's answers carry it) in local time, to the second."""
    if not value:
        return "-"
    moment = datetime.datetime.fromisoformat(str(value)) if not isinstance(value, datetime.datetime) else value
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def duration(seconds) -> str:
    """Seconds as "0.42 s", "12.3 s", "4 min 05 s" or "2 h 03 min"."""
    if seconds is None or seconds == "":
        return "-"
    s = float(seconds)
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    minutes, secs = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def percent(value) -> str:
    return "-" if value is None else f"{100 * float(value):.0f}%"
