"""Browser tests: the demo hospital served by uvicorn on a free local port, Debian's
Chromium driven by Playwright, one phone-sized browser context per test.

The server runs in a thread with an event loop of its own; its clock stands still at
Friday 2026-11-20 10:00 in Shanghai, so sessions and release windows never move. Messages
are delivered by the app's own in-process worker (huey, its job file in the temporary
folder), as in `yuyue serve`: sign-in codes reach the demo phone page and confirmations
the inbox while the browser runs. Tests reach the database through `LiveServer.call`, on
the server's own loop.

Without Chromium at CHROMIUM_PATH (default /usr/bin/chromium) these tests are skipped,
except under CI=true, where they must run. Screenshots go to docs/screenshots/ and are
overwritten on every run; the user guide shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import IN_CI
from tests.payments.live import mounted
from yuyue.config import Settings
from yuyue.demo.seed import seed_demo
from yuyue.kit import migrate
from yuyue.kit.clock import FixedClock
from yuyue.kit.crypto import generate_master_secret
from yuyue.payments.simulated import ALIPAY_PREFIX, WECHATPAY_PREFIX
from yuyue.payments.simulators.alipay import simulator_of
from yuyue.payments.simulators.wechatpay import wechatpay_simulator_of
from yuyue.web.app import create_app
from yuyue.web.context import AppContext

T = TypeVar("T")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Without the networking switches Chromium keeps calling home, which a closed network
# answers with a flood of retries.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Friday 2026-11-20 10:00 in Shanghai: next week's sessions are open for booking.
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """uvicorn serving the demo hospital from a thread with its own event loop."""

    def __init__(
        self, database_path: Path, job_path: Path, *, payments_simulated: bool = False
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = f"sqlite+aiosqlite:///{database_path}"
        self.clock = FixedClock(NOW)
        settings = Settings(
            database_url=self.database_url,
            secret_key=generate_master_secret(),
            # The simulated providers keep their throwaway keys beside this file.
            secret_file=database_path.parent / "secret",
            demo_mode=True,
            hospital_code="demo",
            # The providers' notifications and cashiers' ways back come here.
            public_base_url=self.url,
            worker_in_process=True,
            job_storage=job_path,
            payments_simulated=payments_simulated,
        )
        self.app = create_app(settings, clock=self.clock)
        self.ctx: AppContext = self.app.state.ctx
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name="e2e-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the fixture waiting for /healthz
            self.failure = error
            raise

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        await migrate.upgrade(self.database_url)
        async with self.ctx.db.session_scope() as session:
            await seed_demo(session, cipher=self.ctx.cipher, now=NOW, today=TODAY)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        await self._server.serve()

    def call(self, work: Callable[[AppContext], Awaitable[T]]) -> T:
        """Runs `work(ctx)` on the server's loop (its database engine lives there)."""
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(_awaited(work(self.ctx)), self.loop)
        return future.result(timeout=30)

    async def acall(self, work: Callable[[AppContext], Awaitable[T]]) -> T:
        return await asyncio.to_thread(self.call, work)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=15)


async def _awaited(pending: Awaitable[T]) -> T:
    return await pending


@pytest_asyncio.fixture(scope="session")
async def live_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    folder = tmp_path_factory.mktemp("e2e")
    async with _serving(LiveServer(folder / "yuyue.db", folder / "jobs.db")) as server:
        yield server


@pytest_asyncio.fixture(scope="session")
async def paying_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    """The demo hospital with its local WeChat Pay and Alipay (`payments_simulated`), served
    by the same process under /sim/ and paid through the real adapters, as `yuyue demo`."""
    folder = tmp_path_factory.mktemp("e2e-pay")
    server = LiveServer(folder / "yuyue.db", folder / "jobs.db", payments_simulated=True)
    # The local providers read the server's clock (Friday 10:00), so a hold's end is the
    # same instant to both sides; the Alipay adapter's stamps follow it in the test.
    wechatpay_simulator_of(mounted(server.app, WECHATPAY_PREFIX)).clock = server.clock
    simulator_of(mounted(server.app, ALIPAY_PREFIX)).clock = server.clock.now
    async with _serving(server) as started:
        yield started


@contextlib.asynccontextmanager
async def _serving(server: LiveServer) -> AsyncIterator[LiveServer]:
    server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as http:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            if server.failure is not None:
                raise RuntimeError("the test server did not start") from server.failure
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    break
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the test server did not answer /healthz within 60 s")
            await asyncio.sleep(0.05)
    yield server
    await asyncio.to_thread(server.stop)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if IN_CI:
        raise RuntimeError(f"CI=true but Chromium is missing at {CHROMIUM}")
    pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    _require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


NewPhone = Callable[[], Awaitable[BrowserContext]]


@pytest_asyncio.fixture
async def new_phone(browser: Browser, live_server: LiveServer) -> AsyncIterator[NewPhone]:
    """Hands out fresh phones (no cookies, 360 px wide, touch, Chinese); a test that needs
    two people takes two."""
    opened: list[BrowserContext] = []

    async def open_phone() -> BrowserContext:
        phone = await browser.new_context(base_url=live_server.url, **PHONE)
        phone.set_default_timeout(10_000)
        opened.append(phone)
        return phone

    yield open_phone
    for phone in opened:
        await phone.close()


@pytest_asyncio.fixture
async def page(new_phone: NewPhone) -> Page:
    return await (await new_phone()).new_page()


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(
        path=SCREENSHOTS / name, full_page=full_page, animations="disabled", caret="hide"
    )


@dataclass(frozen=True)
class Person:
    """Someone with a phone: the number they sign in with, shown masked on screen."""

    phone: str

    @property
    def masked(self) -> str:
        return f"{self.phone[:3]}****{self.phone[-4:]}"


async def reload_until(page: Page, check: Callable[[], Awaitable[Any]], *, tries: int = 40) -> None:
    """Reloads a page until `check` (a short Playwright expectation) passes; for pages that
    show what the worker delivered after they were loaded."""
    for attempt in range(tries):
        try:
            await check()
            return
        except AssertionError:
            if attempt == tries - 1:
                raise
            await page.reload()


async def code_on_demo_phone(page: Page, person: Person) -> str:
    """Opens the demo phone page and reads the newest sign-in code sent to `person`."""
    await page.goto("/demo/phone")
    message = page.get_by_test_id("sms").filter(has_text=person.masked).first

    async def arrived() -> None:
        await expect(message).to_contain_text("验证码", timeout=500)

    await reload_until(page, arrived)
    found = re.search(r"验证码是\s*(\d{6})", await message.inner_text())
    assert found, await message.inner_text()
    return found.group(1)


async def sign_in(page: Page, person: Person, *, shots: bool = False) -> None:
    """Signs in the way a person does: phone number, the code from the (demo) phone."""
    await page.goto("/signin")
    await page.get_by_label("手机号").fill(person.phone)
    if shots:
        await screenshot(page, "01-sign-in.png")
    await page.get_by_test_id("send-code").click()
    await expect(page.get_by_role("status")).to_contain_text(person.masked)
    phone_page = await page.context.new_page()
    code = await code_on_demo_phone(phone_page, person)
    if shots:
        await screenshot(phone_page, "02-code-on-demo-phone.png")
    await phone_page.close()
    await page.get_by_label("验证码").fill(code)
    await page.get_by_test_id("sign-in").click()
    await expect(page.get_by_test_id("inbox-link")).to_be_visible()
