"""Signing in with a code: on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import NOW, World
from yuyue.accounts import rules
from yuyue.accounts import service as accounts
from yuyue.accounts.models import SignInCode
from yuyue.kit.errors import YuyueError
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.patients.models import Account
from yuyue.patients.rules import InvalidPhone
from yuyue.web.context import AppContext

PHONE = "13800138000"


async def ask(
    ctx: AppContext, world: World, *, phone: str = PHONE, client: str = "10.0.0.1", at=NOW
):
    async def work(session: AsyncSession) -> None:
        await accounts.request_code(
            session,
            hospital_id=world.hospital.id,
            cipher=ctx.cipher,
            phone=phone,
            client_address=client,
            now=at,
        )

    await ctx.db.transact(work)


async def sent_code(ctx: AppContext) -> str:
    async with ctx.db.read() as session:
        message = await session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.kind == MessageKind.SIGN_IN_CODE)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(1)
        )
    assert message is not None
    return ctx.cipher.decrypt(message.payload["code_cipher"])


async def verify(ctx: AppContext, world: World, code: str, *, at=NOW) -> accounts.SignInOutcome:
    async def work(session: AsyncSession) -> accounts.SignInOutcome:
        return await accounts.verify_code(
            session,
            hospital_id=world.hospital.id,
            cipher=ctx.cipher,
            phone=PHONE,
            code=code,
            now=at,
        )

    return await ctx.db.transact(work)


class TestRequestCode:
    async def test_code_goes_out_by_sms_and_is_not_stored_in_clear(
        self, ctx: AppContext, world: World
    ) -> None:
        await ask(ctx, world)
        code = await sent_code(ctx)
        async with ctx.db.read() as session:
            row = await session.scalar(select(SignInCode))
            message = await session.scalar(select(OutboxMessage))
        assert row is not None and message is not None
        assert code not in row.code_digest
        assert code not in str(message.payload)
        assert message.to_phone_cipher and ctx.cipher.decrypt(message.to_phone_cipher) == PHONE
        assert row.expires_at == NOW + timedelta(minutes=5)

    async def test_invalid_phone_is_refused_and_nothing_is_sent(
        self, ctx: AppContext, world: World
    ) -> None:
        with pytest.raises(InvalidPhone):
            await ask(ctx, world, phone="12345")
        async with ctx.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    async def test_asking_again_too_soon_is_refused_without_a_new_code(
        self, ctx: AppContext, world: World
    ) -> None:
        await ask(ctx, world)
        with pytest.raises(rules.TooManyCodeRequests):
            await ask(ctx, world, at=NOW + timedelta(seconds=30))
        await ask(ctx, world, at=NOW + timedelta(seconds=61))
        async with ctx.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(SignInCode)) == 2


class TestVerifyCode:
    async def test_right_code_signs_in_and_creates_the_account_once(
        self, ctx: AppContext, world: World
    ) -> None:
        await ask(ctx, world)
        outcome = await verify(ctx, world, await sent_code(ctx))
        assert outcome.refusal is None and outcome.account is not None
        assert outcome.account.phone_masked == "138****8000"
        # The same code cannot be used twice.
        again = await verify(ctx, world, await sent_code(ctx))
        assert isinstance(again.refusal, rules.SignInCodeExpired)
        await ask(ctx, world, at=NOW + timedelta(minutes=2))
        second = await verify(ctx, world, await sent_code(ctx), at=NOW + timedelta(minutes=2))
        assert second.account is not None and second.account.id == outcome.account.id

    async def test_wrong_codes_count_down_and_then_lock_even_the_right_code(
        self, ctx: AppContext, world: World
    ) -> None:
        await ask(ctx, world)
        code = await sent_code(ctx)
        wrong = "000000" if code != "000000" else "111111"
        lefts = []
        for _ in range(4):
            outcome = await verify(ctx, world, wrong)
            assert isinstance(outcome.refusal, rules.SignInCodeWrong)
            lefts.append(outcome.refusal.values["left"])
        assert lefts == [4, 3, 2, 1]
        assert isinstance((await verify(ctx, world, wrong)).refusal, rules.SignInCodeLocked)
        assert isinstance((await verify(ctx, world, code)).refusal, rules.SignInCodeLocked)
        async with ctx.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Account)) == 2  # world's

    async def test_expired_code_is_refused(self, ctx: AppContext, world: World) -> None:
        await ask(ctx, world)
        outcome = await verify(ctx, world, await sent_code(ctx), at=NOW + timedelta(minutes=5))
        assert isinstance(outcome.refusal, rules.SignInCodeExpired)

    async def test_concurrent_guesses_all_count_until_the_code_locks(
        self, ctx: AppContext, world: World
    ) -> None:
        await ask(ctx, world)
        code = await sent_code(ctx)
        wrong = "000000" if code != "000000" else "111111"
        outcomes = await asyncio.gather(*(verify(ctx, world, wrong) for _ in range(8)))
        assert all(o.account is None for o in outcomes)
        async with ctx.db.read() as session:
            row = await session.scalar(select(SignInCode))
        # Every guess until the lock counts; a lost update would leave the code guessable.
        assert row is not None and row.wrong_attempts >= rules.DEFAULT_POLICY.max_wrong_attempts
        assert isinstance((await verify(ctx, world, code)).refusal, rules.SignInCodeLocked)

    async def test_concurrent_use_of_one_code_signs_in_once(
        self, ctx: AppContext, world: World
    ) -> None:
        await ask(ctx, world)
        code = await sent_code(ctx)
        outcomes = await asyncio.gather(*(verify(ctx, world, code) for _ in range(6)))
        assert sum(o.account is not None for o in outcomes) == 1
        assert all(isinstance(o.refusal, YuyueError) for o in outcomes if o.account is None)
