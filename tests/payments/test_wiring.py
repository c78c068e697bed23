"""Every kind of yuyue process hears booking's cancellations in payments (the refund owed,
the open order closed): the subscriber is registered when payments' service is imported,
which the web app, the worker and the command line all do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CHECK = """
import importlib, sys
importlib.import_module(sys.argv[1])
from yuyue.booking import events
from yuyue.payments.service import on_booking_event
print(on_booking_event in events._subscribers)
"""


@pytest.mark.parametrize("entry", ["yuyue.cli", "yuyue.web.app", "yuyue.jobs"])
def test_a_fresh_process_of_each_entry_point_subscribes_payments_to_cancellations(
    entry: str,
) -> None:
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    probe = subprocess.run(
        [sys.executable, "-c", CHECK, entry],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=True,
    )
    assert probe.stdout.strip() == "True", probe.stderr


def test_without_an_entry_point_nothing_is_subscribed() -> None:
    """The check above can fail: booking alone registers no one."""
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    probe = subprocess.run(
        [sys.executable, "-c", "from yuyue.booking import events; print(events._subscribers)"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=True,
    )
    assert probe.stdout.strip() == "[]", probe.stdout
