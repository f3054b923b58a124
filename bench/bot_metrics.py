"""A bot's own timings, read from its ``/metrics`` (`bot.metrics`) by the benches."""

from __future__ import annotations

import math

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Buckets = dict[str, dict[float, float]]  # label value → bucket upper bound (s) → cumulative count


async def histogram_buckets(bot_url: str, histogram: str, label: str) -> Buckets:
    """The cumulative bucket counts of ``histogram`` (its name without ``_bucket``) per value
    of ``label``, as the bot at ``bot_url`` exposes them now."""
    async with aiohttp.ClientSession() as session, session.get(f"{bot_url}/metrics") as response:
        text = await response.text()
    buckets: Buckets = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{histogram}_bucket":
                per_label = buckets.setdefault(sample.labels[label], {})
                per_label[float(sample.labels["le"])] = sample.value
    return buckets


def bound_holding(counts: dict[float, float], share: float) -> float:
    """The upper bound (s) of the first bucket holding ``share`` of the observations (inf when
    only the last one does)."""
    ordered = sorted(counts.items())
    for bound, count in ordered:
        if count >= share * ordered[-1][1]:
            return bound
    return math.inf
