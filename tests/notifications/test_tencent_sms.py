"""Tencent Cloud SMS adapter against a local server that plays sms.tencentcloudapi.com."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from tests.notifications.fake_providers import CHINA, FakeTencent, tc3_signature
from yuyue.config import Settings
from yuyue.notifications.channels import tencent
from yuyue.notifications.channels.base import SmsMessage
from yuyue.notifications.channels.factory import build_sms_sender
from yuyue.notifications.channels.tencent import TencentSmsSender

SECRET_ID = "AKIDtestsecretid"
SECRET_KEY = "test-key-not-real"
APP_ID = "1400006666"
SIGN_NAME = "示例医院"
PHONE = "13812341234"


def message(**overrides: object) -> SmsMessage:
    values: dict[str, object] = {
        "phone": PHONE,
        "template_code": "1234567:code,minutes",
        "params": {"minutes": "5", "code": "428913"},
        "text": "【示例医院】验证码428913，5分钟内有效。",
        "reference": "delivery-7f3a",
    }
    values.update(overrides)
    return SmsMessage(**values)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeTencent]:
    provider = FakeTencent(
        secrets={SECRET_ID: SECRET_KEY},
        sdk_app_id=APP_ID,
        sign_names={SIGN_NAME},
        templates={"1234567": 2, "7654321": 3},
    )
    with provider.running():
        yield provider


@pytest.fixture
async def sender(fake: FakeTencent) -> AsyncIterator[TencentSmsSender]:
    sender = TencentSmsSender(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        sdk_app_id=APP_ID,
        sign_name=SIGN_NAME,
        endpoint=fake.endpoint,
        timeout_seconds=0.5,
    )
    yield sender
    await sender.aclose()


class TestTc3Signature:
    # The worked example of "Signature v3" in the API 3.0 documentation: DescribeInstances
    # on cvm at timestamp 1551113065.
    PAYLOAD = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    HEADERS = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}

    def canonical(self) -> str:
        return tencent.canonical_request(
            method="POST",
            headers=self.HEADERS,
            signed_headers=["content-type", "host"],
            payload=self.PAYLOAD,
        )

    def test_canonical_request_matches_the_documented_example(self) -> None:
        assert self.canonical() == (
            "POST\n/\n\n"
            "content-type:application/json; charset=utf-8\n"
            "host:cvm.tencentcloudapi.com\n\n"
            "content-type;host\n"
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        )
        assert (
            hashlib.sha256(self.canonical().encode()).hexdigest()
            == "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        )

    def test_authorization_matches_the_documented_example(self) -> None:
        header = tencent.authorization(
            secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            timestamp=1551113065,
            headers=self.HEADERS,
            payload=self.PAYLOAD,
            service="cvm",
        )

        assert header == (
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
            "tc3_request, SignedHeaders=content-type;host, "
            "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        )

    def test_the_fake_provider_signs_the_documented_example_the_same_way(self) -> None:
        assert (
            tc3_signature(
                secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                day="2019-02-25",
                service="cvm",
                timestamp="1551113065",
                canonical_request=self.canonical(),
            )
            == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        )

    def test_the_credential_date_is_the_utc_date(self) -> None:
        # 00:44 on 26 February in Beijing is still the 25th in UTC.
        assert tencent.credential_scope(1551113065) == "2019-02-25/sms/tc3_request"


class TestTemplateValues:
    def test_the_template_setting_names_the_order(self) -> None:
        assert tencent.template_values("1234567:code,minutes", {"minutes": "5", "code": "9"}) == (
            "1234567",
            ["9", "5"],
        )

    def test_without_an_order_numeric_keys_go_by_number(self) -> None:
        params = {"10": "j", "2": "b", "1": "a"}
        assert tencent.template_values("1234567", params) == ("1234567", ["a", "b", "j"])

    def test_without_an_order_names_go_alphabetically(self) -> None:
        assert tencent.template_values("1234567", {"time": "t", "doctor": "d"}) == (
            "1234567",
            ["d", "t"],
        )

    def test_a_named_value_the_message_lacks_is_an_error(self) -> None:
        with pytest.raises(KeyError, match="minutes"):
            tencent.template_values("1234567:code,minutes", {"code": "9"})


class TestSendSms:
    async def test_accepted_message_reaches_the_provider_with_our_reference(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        outcome = await sender.send(message())

        assert outcome.accepted
        [record] = fake.records
        assert outcome.provider_id == record.serial_no
        assert (record.phone, record.template_id, record.session_context) == (
            "+8613812341234",
            "1234567",
            "delivery-7f3a",
        )
        assert record.values == ["428913", "5"]

    async def test_request_carries_the_action_headers_and_body(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        await sender.send(message())

        [request] = fake.received
        body = json.loads(request.body)
        assert request.headers["x-tc-action"] == "SendSms"
        assert request.headers["x-tc-version"] == "2021-01-11"
        assert request.headers["x-tc-region"] == "ap-guangzhou"
        assert abs(int(request.headers["x-tc-timestamp"]) - time.time()) < 60
        assert request.headers["authorization"].startswith(
            f"TC3-HMAC-SHA256 Credential={SECRET_ID}/"
        )
        assert "/sms/tc3_request" in request.headers["authorization"]
        assert body["SmsSdkAppId"] == APP_ID
        assert body["SignName"] == SIGN_NAME
        assert body["PhoneNumberSet"] == ["+8613812341234"]

    async def test_a_tampered_body_is_refused_by_the_provider(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        await sender.send(message())
        signed = fake.received[0]
        tampered = signed.body.replace(b"13812341234", b"13900000000")

        async with httpx.AsyncClient() as client:
            response = await client.post(
                fake.endpoint,
                content=tampered,
                headers={
                    name: signed.headers[name]
                    for name in (
                        "authorization",
                        "content-type",
                        "x-tc-action",
                        "x-tc-version",
                        "x-tc-timestamp",
                        "x-tc-region",
                    )
                },
            )

        assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
        assert len(fake.records) == 1

    async def test_a_wrong_secret_is_a_final_auth_failure(self, fake: FakeTencent) -> None:
        sender = TencentSmsSender(
            secret_id=SECRET_ID,
            secret_key="rotated-away",
            sdk_app_id=APP_ID,
            sign_name=SIGN_NAME,
            endpoint=fake.endpoint,
        )
        try:
            outcome = await sender.send(message())
        finally:
            await sender.aclose()

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == "AuthFailure.SignatureFailure"
        assert fake.records == []

    async def test_an_unknown_secret_id_is_final(self, fake: FakeTencent) -> None:
        sender = TencentSmsSender(
            secret_id="AKIDunknown",
            secret_key=SECRET_KEY,
            sdk_app_id=APP_ID,
            sign_name=SIGN_NAME,
            endpoint=fake.endpoint,
        )
        try:
            outcome = await sender.send(message())
        finally:
            await sender.aclose()

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == "AuthFailure.SecretIdNotFound"

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"phone": "1381234"}, "InvalidParameterValue.IncorrectPhoneNumber"),
            ({"template_code": "999"}, "FailedOperation.TemplateIncorrectOrUnapproved"),
            (
                {"template_code": "7654321:code,minutes"},
                "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
            ),
        ],
    )
    async def test_refusals_about_the_message_are_final(
        self,
        fake: FakeTencent,
        sender: TencentSmsSender,
        overrides: dict[str, object],
        code: str,
    ) -> None:
        outcome = await sender.send(message(**overrides))

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == code
        assert fake.records == []

    async def test_a_template_value_the_message_lacks_is_refused_without_a_call(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        outcome = await sender.send(message(params={"code": "428913"}))

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.reason is not None and "minutes" in outcome.reason
        assert fake.received == []

    @pytest.mark.parametrize(
        ("code", "per_number", "retryable"),
        [
            ("LimitExceeded.PhoneNumberThirtySecondLimit", True, True),
            ("LimitExceeded.PhoneNumberDailyLimit", True, True),
            ("LimitExceeded.AppDailyLimit", False, True),
            ("RequestLimitExceeded", False, True),
            ("InternalError.Timeout", False, True),
            ("InternalError.SendAndRecvFail", False, True),
            ("FailedOperation.PhoneNumberInBlacklist", True, False),
            ("FailedOperation.InsufficientBalanceInSmsPackage", False, False),
            ("InvalidParameterValue.ContentLengthLimit", False, False),
            ("AuthFailure.SignatureExpire", False, False),
            ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", False, False),
            ("LimitExceededSomethingElse", False, False),
        ],
    )
    async def test_provider_codes_are_classified(
        self,
        fake: FakeTencent,
        sender: TencentSmsSender,
        code: str,
        per_number: bool,
        retryable: bool,
    ) -> None:
        fake.answer_next_with(code, per_number=per_number)

        outcome = await sender.send(message())

        assert not outcome.accepted
        assert outcome.retryable is retryable
        assert outcome.reason == f"{code}: scripted failure"
        assert len(fake.received) == 1, "a sender never retries on its own"

    async def test_http_500_is_retryable(self, fake: FakeTencent, sender: TencentSmsSender) -> None:
        fake.fail_next_with_http(500)

        outcome = await sender.send(message())

        assert (outcome.accepted, outcome.retryable, outcome.reason) == (False, True, "HTTP 500")

    async def test_a_malformed_answer_is_retryable_and_flagged_as_unknown(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        fake.malform_next()

        outcome = await sender.send(message())

        assert (outcome.accepted, outcome.retryable) == (False, True)
        assert outcome.details == {"outcome_unknown": "true"}

    async def test_a_provider_that_hangs_times_out_as_retryable(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        fake.hang_next(5)

        started = time.monotonic()
        outcome = await sender.send(message())

        assert time.monotonic() - started < 2
        assert (outcome.accepted, outcome.retryable) == (False, True)
        assert outcome.reason is not None and outcome.reason.startswith("timeout")

    async def test_logs_mask_the_number_and_never_show_the_secret(
        self,
        fake: FakeTencent,
        sender: TencentSmsSender,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)

        await sender.send(message())
        fake.answer_next_with("LimitExceeded.PhoneNumberDailyLimit", per_number=True)
        await sender.send(message())

        assert "138****1234" in caplog.text
        assert PHONE not in caplog.text
        assert SECRET_KEY not in caplog.text
        assert SECRET_KEY not in repr(sender)


class TestWasSent:
    def today(self) -> datetime:
        return datetime.now(CHINA)

    async def test_a_delivered_receipt_is_sent_and_a_failed_one_is_not(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        await sender.send(message())

        fake.report("delivery-7f3a", "SUCCESS")
        assert await sender.was_sent(message(), on=self.today().date()) is True
        fake.report("delivery-7f3a", "FAIL")
        assert await sender.was_sent(message(), on=self.today().date()) is False

    async def test_the_pull_covers_that_day_in_china(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        await sender.was_sent(message(), on=self.today().date())

        [pull] = fake.received
        body = json.loads(pull.body)
        midnight = datetime.combine(self.today().date(), datetime.min.time(), CHINA)
        assert pull.headers["x-tc-action"] == "PullSmsSendStatusByPhoneNumber"
        assert body["PhoneNumber"] == "+8613812341234"
        assert (body["BeginTime"], body["EndTime"]) == (
            int(midnight.timestamp()),
            int((midnight + timedelta(days=1)).timestamp()),
        )

    async def test_no_receipt_yet_cannot_tell(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        await sender.send(message())

        assert await sender.was_sent(message(), on=self.today().date()) is None

    async def test_another_reference_or_day_cannot_tell(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        await sender.send(message())
        fake.report("delivery-7f3a", "SUCCESS")

        assert await sender.was_sent(message(reference="other"), on=self.today().date()) is None
        yesterday = (self.today() - timedelta(days=1)).date()
        assert await sender.was_sent(message(), on=yesterday) is None

    async def test_a_failed_pull_cannot_tell(
        self, fake: FakeTencent, sender: TencentSmsSender
    ) -> None:
        await sender.send(message())
        fake.report("delivery-7f3a", "SUCCESS")

        fake.answer_next_with("InternalError.Timeout")
        assert await sender.was_sent(message(), on=self.today().date()) is None


class TestFactory:
    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "sms_provider": "tencent",
            "sms_access_key_id": SECRET_ID,
            "sms_access_key_secret": SECRET_KEY,
            "sms_app_id": APP_ID,
            "sms_sign_name": SIGN_NAME,
            "sms_region": "ap-guangzhou",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def test_the_app_id_is_required(self) -> None:
        with pytest.raises(ValueError, match="YUYUE_SMS_APP_ID"):
            build_sms_sender(self.settings(sms_app_id=None))

    def test_an_alibaba_region_is_refused(self) -> None:
        with pytest.raises(ValueError, match="'cn-hangzhou' is not a Tencent Cloud region"):
            build_sms_sender(self.settings(sms_region="cn-hangzhou"))

    def test_missing_credentials_are_named(self) -> None:
        with pytest.raises(ValueError, match="YUYUE_SMS_ACCESS_KEY_ID"):
            build_sms_sender(self.settings(sms_access_key_id=None))

    async def test_built_sender_sends(self, fake: FakeTencent) -> None:
        sender = build_sms_sender(self.settings(sms_endpoint=fake.endpoint, sms_provider="Tencent"))
        assert isinstance(sender, TencentSmsSender)
        try:
            outcome = await sender.send(message())
        finally:
            await sender.aclose()

        assert outcome.accepted
        assert fake.received[0].headers["x-tc-region"] == "ap-guangzhou"
