"""Alibaba Cloud SMS adapter against a local server that plays dysmsapi."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.notifications.fake_providers import CHINA, AlibabaRecord, FakeAlibaba, alibaba_signature
from yuyue.config import Settings
from yuyue.notifications.channels import alibaba
from yuyue.notifications.channels.alibaba import AlibabaSmsSender
from yuyue.notifications.channels.base import SmsMessage
from yuyue.notifications.channels.factory import build_sms_sender

KEY_ID = "LTAI5tTestKeyId"
SECRET = "test-secret-not-real"
SIGN_NAME = "示例医院"
PHONE = "13812341234"


def message(**overrides: object) -> SmsMessage:
    values: dict[str, object] = {
        "phone": PHONE,
        "template_code": "SMS_100",
        "params": {"code": "428913", "minutes": "5"},
        "text": "【示例医院】验证码428913，5分钟内有效。",
        "reference": "delivery-7f3a",
    }
    values.update(overrides)
    return SmsMessage(**values)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeAlibaba]:
    provider = FakeAlibaba(
        access_keys={KEY_ID: SECRET},
        sign_names={SIGN_NAME},
        templates={"SMS_100": {"code", "minutes"}, "SMS_200": {"doctor", "time"}},
    )
    with provider.running():
        yield provider


@pytest.fixture
async def sender(fake: FakeAlibaba) -> AsyncIterator[AlibabaSmsSender]:
    sender = AlibabaSmsSender(
        access_key_id=KEY_ID,
        access_key_secret=SECRET,
        sign_name=SIGN_NAME,
        endpoint=fake.endpoint,
        timeout_seconds=0.5,
    )
    yield sender
    await sender.aclose()


def today() -> datetime:
    return datetime.now(CHINA)


class TestSignatureV1:
    # The worked example of the SMS documentation ("HTTP协议及签名"): SendSms with
    # AccessKeyId testId and secret testSecret.
    DOC_PARAMS = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    DOC_STRING_TO_SIGN = (
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
        "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598"
        "%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B"
        "%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0"
        "%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A"
        "%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z"
        "%26Version%3D2017-05-25"
    )

    def test_string_to_sign_matches_the_documented_example(self) -> None:
        assert alibaba.string_to_sign("GET", self.DOC_PARAMS) == self.DOC_STRING_TO_SIGN

    def test_signature_matches_the_documented_example(self) -> None:
        assert alibaba.sign("GET", self.DOC_PARAMS, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="

    def test_the_fake_provider_signs_the_documented_example_the_same_way(self) -> None:
        signature, to_sign = alibaba_signature("GET", self.DOC_PARAMS, "testSecret")
        assert (signature, to_sign) == ("zJDF+Lrzhj/ThnlvIToysFRq6t4=", self.DOC_STRING_TO_SIGN)

    @pytest.mark.parametrize(
        ("raw", "encoded"),
        [
            ("a b", "a%20b"),
            ("a*b", "a%2Ab"),
            ("a~b", "a~b"),
            ("a+b/c=d&e", "a%2Bb%2Fc%3Dd%26e"),
            ("中", "%E4%B8%AD"),
            ("-_.", "-_."),
        ],
    )
    def test_percent_encoding_follows_rfc_3986(self, raw: str, encoded: str) -> None:
        assert alibaba.percent_encode(raw) == encoded

    def test_a_post_is_signed_over_post(self) -> None:
        assert alibaba.sign("POST", self.DOC_PARAMS, "testSecret") != alibaba.sign(
            "GET", self.DOC_PARAMS, "testSecret"
        )


class TestSendSms:
    async def test_accepted_message_reaches_the_provider_with_our_reference(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        outcome = await sender.send(message())

        assert outcome.accepted
        [record] = fake.records
        assert outcome.provider_id == record.biz_id
        assert (record.phone, record.sign_name, record.template_code, record.out_id) == (
            PHONE,
            SIGN_NAME,
            "SMS_100",
            "delivery-7f3a",
        )
        assert record.params == {"code": "428913", "minutes": "5"}

    async def test_request_carries_every_common_parameter_in_a_form_body(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        await sender.send(message())

        [request] = fake.received
        params = dict(parse_qsl(request.body.decode()))
        assert request.method == "POST"
        # Nothing about the patient in the URL, which HTTP clients and proxies log.
        assert request.path == "/"
        assert params["Action"] == "SendSms"
        assert params["Version"] == "2017-05-25"
        assert params["Format"] == "JSON"
        assert params["SignatureVersion"] == "1.0"
        assert params["RegionId"] == "cn-hangzhou"
        stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        assert abs(stamp.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)

    async def test_every_request_uses_a_fresh_nonce(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        # The fake, like the provider, refuses a nonce it has seen (SignatureNonceUsed).
        first = await sender.send(message(reference="a"))
        second = await sender.send(message(reference="b"))

        assert first.accepted and second.accepted
        assert len(fake.nonces) == 2

    async def test_a_tampered_request_is_refused_by_the_provider(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        await sender.send(message())
        params = dict(parse_qsl(fake.received[0].body.decode()))
        params["PhoneNumbers"] = "13900000000"
        params["SignatureNonce"] = "another-nonce"

        async with httpx.AsyncClient() as client:
            response = await client.post(fake.endpoint, data=params)

        assert response.status_code == 400
        assert response.json()["Code"] == "SignatureDoesNotMatch"
        assert len(fake.records) == 1

    async def test_a_wrong_secret_is_a_final_signature_refusal_without_the_number(
        self, fake: FakeAlibaba
    ) -> None:
        sender = AlibabaSmsSender(
            access_key_id=KEY_ID,
            access_key_secret="rotated-away",
            sign_name=SIGN_NAME,
            endpoint=fake.endpoint,
        )
        try:
            outcome = await sender.send(message())
        finally:
            await sender.aclose()

        assert not outcome.accepted
        assert not outcome.retryable
        assert outcome.reason is not None
        assert outcome.reason.startswith("SignatureDoesNotMatch")
        # The provider quotes the string it signed, number and all; we keep neither.
        assert PHONE not in outcome.reason
        assert fake.records == []

    async def test_an_unknown_access_key_is_final(self, fake: FakeAlibaba) -> None:
        sender = AlibabaSmsSender(
            access_key_id="LTAI-unknown",
            access_key_secret=SECRET,
            sign_name=SIGN_NAME,
            endpoint=fake.endpoint,
        )
        try:
            outcome = await sender.send(message())
        finally:
            await sender.aclose()

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == "InvalidAccessKeyId.NotFound"

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"phone": "1381234"}, "isv.MOBILE_NUMBER_ILLEGAL"),
            ({"template_code": "SMS_999"}, "isv.SMS_TEMPLATE_ILLEGAL"),
            ({"params": {"code": "428913"}}, "isv.TEMPLATE_MISSING_PARAMETERS"),
        ],
    )
    async def test_refusals_about_the_message_are_final(
        self,
        fake: FakeAlibaba,
        sender: AlibabaSmsSender,
        overrides: dict[str, object],
        code: str,
    ) -> None:
        outcome = await sender.send(message(**overrides))

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == code
        assert fake.records == []

    async def test_an_unapproved_signature_is_final(self, fake: FakeAlibaba) -> None:
        sender = AlibabaSmsSender(
            access_key_id=KEY_ID,
            access_key_secret=SECRET,
            sign_name="未审批签名",
            endpoint=fake.endpoint,
        )
        try:
            outcome = await sender.send(message())
        finally:
            await sender.aclose()

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == "isv.SMS_SIGNATURE_ILLEGAL"

    @pytest.mark.parametrize(
        ("code", "http_status", "retryable"),
        [
            ("isp.SYSTEM_ERROR", 200, True),
            ("isv.BUSINESS_LIMIT_CONTROL", 200, True),
            ("isv.DAY_LIMIT_CONTROL", 200, True),
            ("Throttling.User", 400, True),
            ("Throttling.Api", 400, True),
            ("InternalError", 500, True),
            ("ServiceUnavailable", 503, True),
            ("isv.MOBILE_NUMBER_ILLEGAL", 200, False),
            ("isv.SMS_TEMPLATE_ILLEGAL", 200, False),
            ("isv.SMS_SIGNATURE_ILLEGAL", 200, False),
            ("isv.TEMPLATE_MISSING_PARAMETERS", 200, False),
            ("isv.AMOUNT_NOT_ENOUGH", 200, False),
            ("isv.OUT_OF_SERVICE", 200, False),
            ("isv.SOMETHING_NEW", 200, False),
        ],
    )
    async def test_provider_codes_are_classified(
        self,
        fake: FakeAlibaba,
        sender: AlibabaSmsSender,
        code: str,
        http_status: int,
        retryable: bool,
    ) -> None:
        fake.answer_next_with(code, http_status=http_status)

        outcome = await sender.send(message())

        assert not outcome.accepted
        assert outcome.retryable is retryable
        assert outcome.reason == f"{code}: scripted failure"
        assert outcome.details["code"] == code
        assert len(fake.received) == 1, "a sender never retries on its own"

    async def test_http_500_without_a_code_is_retryable(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        fake.fail_next_with_http(500)

        outcome = await sender.send(message())

        assert (outcome.accepted, outcome.retryable, outcome.reason) == (False, True, "HTTP 500")
        assert len(fake.received) == 1

    async def test_http_404_without_a_code_is_final(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        fake.fail_next_with_http(404)

        outcome = await sender.send(message())

        assert (outcome.accepted, outcome.retryable) == (False, False)

    async def test_a_malformed_answer_is_retryable_and_flagged_as_unknown(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        fake.malform_next()

        outcome = await sender.send(message())

        assert (outcome.accepted, outcome.retryable) == (False, True)
        assert outcome.details == {"outcome_unknown": "true"}

    async def test_a_provider_that_hangs_times_out_as_retryable(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        fake.hang_next(5)

        started = time.monotonic()
        outcome = await sender.send(message())

        assert time.monotonic() - started < 2
        assert (outcome.accepted, outcome.retryable) == (False, True)
        assert outcome.reason is not None and outcome.reason.startswith("timeout")
        assert outcome.details == {"outcome_unknown": "true"}

    async def test_a_closed_port_is_retryable_and_certainly_not_sent(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sender = AlibabaSmsSender(
            access_key_id=KEY_ID,
            access_key_secret=SECRET,
            sign_name=SIGN_NAME,
            endpoint=f"http://127.0.0.1:{port}/",
        )
        try:
            outcome = await sender.send(message())
        finally:
            await sender.aclose()

        assert (outcome.accepted, outcome.retryable) == (False, True)
        assert outcome.reason == "network error: ConnectError"
        assert outcome.details == {}

    async def test_logs_mask_the_number_and_never_show_the_secret(
        self,
        fake: FakeAlibaba,
        sender: AlibabaSmsSender,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)

        await sender.send(message())
        fake.answer_next_with("isv.BUSINESS_LIMIT_CONTROL")
        await sender.send(message())

        assert "138****1234" in caplog.text
        assert PHONE not in caplog.text
        assert SECRET not in caplog.text
        assert SECRET not in repr(sender)


class TestWasSent:
    async def test_an_accepted_message_waiting_for_its_receipt_counts_as_sent(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        await sender.send(message())

        assert await sender.was_sent(message(), on=today().date()) is True
        [query] = [r for r in fake.received if b"QuerySendDetails" in r.body]
        params = dict(parse_qsl(query.body.decode()))
        assert params["PhoneNumber"] == PHONE
        assert params["SendDate"] == today().strftime("%Y%m%d")
        assert (params["PageSize"], params["CurrentPage"]) == ("50", "1")

    async def test_delivered_is_sent_and_failed_is_not(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        await sender.send(message())

        fake.set_status("delivery-7f3a", 3)
        assert await sender.was_sent(message(), on=today().date()) is True
        fake.set_status("delivery-7f3a", 2)
        assert await sender.was_sent(message(), on=today().date()) is False

    async def test_another_reference_or_another_day_is_not_sent(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        await sender.send(message())

        assert await sender.was_sent(message(reference="other"), on=today().date()) is False
        yesterday = (today() - timedelta(days=1)).date()
        assert await sender.was_sent(message(), on=yesterday) is False

    async def test_our_record_is_found_beyond_the_first_page(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        fake.records += [
            AlibabaRecord(
                phone=PHONE,
                sign_name=SIGN_NAME,
                template_code="SMS_100",
                params={},
                out_id=f"earlier-{n}",
                biz_id=f"{n}^0",
                send_date=today().strftime("%Y%m%d"),
                status=3,
            )
            for n in range(73)
        ]
        await sender.send(message())

        assert await sender.was_sent(message(), on=today().date()) is True
        pages = [
            dict(parse_qsl(r.body.decode()))["CurrentPage"]
            for r in fake.received
            if b"QuerySendDetails" in r.body
        ]
        assert pages == ["1", "2"]

    async def test_a_failed_look_up_cannot_tell(
        self, fake: FakeAlibaba, sender: AlibabaSmsSender
    ) -> None:
        await sender.send(message())

        fake.answer_next_with("Throttling.User", http_status=400)
        assert await sender.was_sent(message(), on=today().date()) is None
        fake.hang_next(5)
        assert await sender.was_sent(message(), on=today().date()) is None


class TestFactory:
    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "sms_provider": "alibaba",
            "sms_access_key_id": KEY_ID,
            "sms_access_key_secret": SECRET,
            "sms_sign_name": SIGN_NAME,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    def test_console_has_no_sender(self) -> None:
        assert build_sms_sender(self.settings(sms_provider="console")) is None

    def test_an_unknown_provider_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown YUYUE_SMS_PROVIDER 'aliyun'"):
            build_sms_sender(self.settings(sms_provider="aliyun"))

    def test_missing_credentials_are_named(self) -> None:
        with pytest.raises(ValueError, match="YUYUE_SMS_ACCESS_KEY_SECRET") as refusal:
            build_sms_sender(self.settings(sms_access_key_secret=None))
        assert "YUYUE_SMS_ACCESS_KEY_ID" not in str(refusal.value)
        with pytest.raises(ValueError, match="YUYUE_SMS_SIGN_NAME"):
            build_sms_sender(self.settings(sms_sign_name=""))

    async def test_built_sender_sends_through_a_shared_client(self, fake: FakeAlibaba) -> None:
        async with httpx.AsyncClient() as client:
            sender = build_sms_sender(self.settings(sms_endpoint=fake.endpoint), client=client)
            assert isinstance(sender, AlibabaSmsSender)
            first = await sender.send(message(reference="a"))
            second = await sender.send(message(reference="b"))
            await sender.aclose()
            # The caller's client stays open for the caller to close.
            assert not client.is_closed

        assert first.accepted and second.accepted
        assert [r.out_id for r in fake.records] == ["a", "b"]

    async def test_a_sender_closes_the_client_it_opened(self, fake: FakeAlibaba) -> None:
        sender = build_sms_sender(self.settings(sms_endpoint=fake.endpoint))
        assert sender is not None
        await sender.aclose()

        with pytest.raises(RuntimeError, match="client has been closed"):
            await sender.send(message())
        assert fake.received == []
