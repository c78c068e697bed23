"""Local HTTP servers that play Alibaba Cloud SMS and Tencent Cloud SMS.

Each verifies requests the way the provider does, with its own signing code written from
the providers' documentation (nothing is imported from the adapters), checks the
parameters it needs, answers in the provider's JSON, remembers what it accepted so
delivery look-ups can find it, and can be told to misbehave for the next request: answer
with a given error code, an HTTP 500, a body that is not JSON, or nothing at all for a
while.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CHINA = timezone(timedelta(hours=8))
Answer = tuple[int, dict[str, Any]]
Refuse = Callable[..., Answer]
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


@dataclass
class Misbehaviour:
    """What to do with the next request instead of serving it."""

    code: str | None = None
    message: str = "scripted failure"
    http_status: int = 200
    malformed: bool = False
    hang_seconds: float = 0.0
    # Tencent only: a per-number refusal inside SendStatusSet rather than a request error.
    per_number: bool = False
    # Serve the request (the provider takes the message), then drop the connection
    # without answering: the caller cannot know it went out.
    lose_answer: bool = False


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeProvider:
    """A ThreadingHTTPServer on 127.0.0.1 and a random port, serving `handle`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripted: list[Misbehaviour] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                )
                status, body = provider.dispatch(request)
                if body is None:  # hung past the client's patience; nothing to say
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @contextmanager
    def running(self) -> Iterator[FakeProvider]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def misbehave_next(self, misbehaviour: Misbehaviour) -> None:
        with self._lock:
            self._scripted.append(misbehaviour)

    def answer_next_with(
        self, code: str, *, http_status: int = 200, per_number: bool = False
    ) -> None:
        self.misbehave_next(Misbehaviour(code=code, http_status=http_status, per_number=per_number))

    def fail_next_with_http(self, status: int) -> None:
        self.misbehave_next(Misbehaviour(http_status=status, malformed=True))

    def malform_next(self) -> None:
        self.misbehave_next(Misbehaviour(malformed=True))

    def lose_next_answer(self) -> None:
        self.misbehave_next(Misbehaviour(lose_answer=True))

    def hang_next(self, seconds: float) -> None:
        self.misbehave_next(Misbehaviour(hang_seconds=seconds))

    def dispatch(self, request: Received) -> tuple[int, bytes | None]:
        with self._lock:
            self.received.append(request)
            scripted = self._scripted.pop(0) if self._scripted else None
        if scripted is not None and scripted.hang_seconds:
            self._stopping.wait(scripted.hang_seconds)
            return 200, None
        if scripted is not None and scripted.malformed:
            return scripted.http_status, b"<html>502 Bad Gateway</html>"
        if scripted is not None and scripted.lose_answer:
            self.handle(request, None)
            return 200, None
        status, answer = self.handle(request, scripted)
        return status, json.dumps(answer, ensure_ascii=False).encode()

    def handle(
        self, request: Received, scripted: Misbehaviour | None
    ) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError


# --------------------------------------------------------------------------- Alibaba


def pop_encode(text: str) -> str:
    """Alibaba's percent-encoding, byte by byte as its documentation spells it out."""
    return "".join(
        chr(byte) if byte in UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


def alibaba_signature(method: str, params: dict[str, str], secret: str) -> tuple[str, str]:
    """(signature, string to sign) over every parameter except Signature."""
    pairs = sorted((key, value) for key, value in params.items() if key != "Signature")
    canonical = "&".join(pop_encode(key) + "=" + pop_encode(value) for key, value in pairs)
    to_sign = method + "&" + pop_encode("/") + "&" + pop_encode(canonical)
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode(), to_sign


@dataclass
class AlibabaRecord:
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    out_id: str
    biz_id: str
    send_date: str
    # 1 waiting for the carrier's receipt, 2 failed, 3 delivered.
    status: int = 1


class FakeAlibaba(FakeProvider):
    def __init__(
        self,
        *,
        access_keys: dict[str, str],
        sign_names: set[str],
        templates: dict[str, set[str]],
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        # The provider's own clock decides a message's send date, which delivery look-ups
        # are keyed by; a test with a fixed clock hands in the same clock.
        self.now = now or (lambda: datetime.now(CHINA))
        self.access_keys = access_keys
        self.sign_names = sign_names
        # Approved template codes and the variables each one needs.
        self.templates = templates
        self.records: list[AlibabaRecord] = []
        self.nonces: set[str] = set()

    def set_status(self, out_id: str, status: int) -> None:
        for record in self.records:
            if record.out_id == out_id:
                record.status = status

    def handle(
        self, request: Received, scripted: Misbehaviour | None
    ) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()

        def error(code: str, message: str, status: int = 400) -> tuple[int, dict[str, Any]]:
            return status, {"RequestId": request_id, "Code": code, "Message": message}

        if request.method == "POST":
            if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                return error("InvalidParameter", "form body expected")
            raw = request.body.decode()
        else:
            raw = urlsplit(request.path).query
        params = dict(parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw)))
        for name in (
            "Action",
            "Version",
            "AccessKeyId",
            "Signature",
            "SignatureMethod",
            "SignatureVersion",
            "SignatureNonce",
            "Timestamp",
            "Format",
            "RegionId",
        ):
            if not params.get(name):
                return error(f"Missing{name}", f"{name} is mandatory for this action.")
        if params["Version"] != "2017-05-25":
            return error("InvalidVersion", "Specified parameter Version is not valid.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return error("InvalidSignatureMethod", "Specified signature method is not valid.")
        if params["Format"] != "JSON":
            return error("InvalidParameter", "this fake only speaks JSON")
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return error("InvalidTimeStamp.Format", "Specified time stamp is not valid.")
        if abs(datetime.now(UTC) - stamp.replace(tzinfo=UTC)) > timedelta(minutes=15):
            return error("InvalidTimeStamp.Expired", "Specified time stamp or date has expired.")
        secret = self.access_keys.get(params["AccessKeyId"])
        if secret is None:
            return error("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        expected, to_sign = alibaba_signature(request.method, params, secret)
        if not hmac.compare_digest(expected, params["Signature"]):
            return error(
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{to_sign}",
            )
        if params["SignatureNonce"] in self.nonces:
            return error("SignatureNonceUsed", "Specified signature nonce was used already.")
        self.nonces.add(params["SignatureNonce"])
        if scripted is not None and scripted.code:
            return error(scripted.code, scripted.message, scripted.http_status)
        if params["Action"] == "SendSms":
            return self._send(params, request_id, error)
        if params["Action"] == "QuerySendDetails":
            return self._query(params, request_id, error)
        return error("InvalidAction.NotFound", "Specified api is not found.", 404)

    def _send(
        self, params: dict[str, str], request_id: str, error: Refuse
    ) -> tuple[int, dict[str, Any]]:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return error(f"Missing{name}", f"{name} is mandatory for this action.")
        if not re.fullmatch(r"1\d{10}", params["PhoneNumbers"]):
            return error("isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number", 200)
        if params["SignName"] not in self.sign_names:
            return error("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名", 200)
        needed = self.templates.get(params["TemplateCode"])
        if needed is None:
            return error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板", 200)
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值", 200)
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值", 200)
        if needed - values.keys():
            return error("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值", 200)
        record = AlibabaRecord(
            phone=params["PhoneNumbers"],
            sign_name=params["SignName"],
            template_code=params["TemplateCode"],
            params=values,
            out_id=params.get("OutId", ""),
            biz_id=f"{uuid.uuid4().int % 10**18}^0",
            send_date=self.now().astimezone(CHINA).strftime("%Y%m%d"),
        )
        self.records.append(record)
        return 200, {
            "RequestId": request_id,
            "Code": "OK",
            "Message": "OK",
            "BizId": record.biz_id,
        }

    def _query(
        self, params: dict[str, str], request_id: str, error: Refuse
    ) -> tuple[int, dict[str, Any]]:
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not params.get(name):
                return error(f"Missing{name}", f"{name} is mandatory for this action.")
        if not re.fullmatch(r"\d{8}", params["SendDate"]):
            return error("isv.PARAM_NOT_SUPPORT_URL", "SendDate must be yyyyMMdd")
        size, page = int(params["PageSize"]), int(params["CurrentPage"])
        if not 1 <= size <= 50 or page < 1:
            return error("InvalidParameter", "PageSize must be 1..50 and CurrentPage >= 1")
        matching = [
            record
            for record in self.records
            if record.phone == params["PhoneNumber"] and record.send_date == params["SendDate"]
        ]
        shown = matching[(page - 1) * size : page * size]
        return 200, {
            "RequestId": request_id,
            "Code": "OK",
            "Message": "OK",
            "TotalCount": len(matching),
            "SmsSendDetailDTOs": {
                "SmsSendDetailDTO": [
                    {
                        "PhoneNum": record.phone,
                        "SendStatus": record.status,
                        "ErrCode": {1: "", 2: "MK:0001", 3: "DELIVERED"}[record.status],
                        "TemplateCode": record.template_code,
                        "Content": "【" + record.sign_name + "】…",
                        "SendDate": "2026-11-20 10:00:00",
                        "ReceiveDate": "2026-11-20 10:00:05",
                        "OutId": record.out_id,
                    }
                    for record in shown
                ]
            },
        }


# --------------------------------------------------------------------------- Tencent


def tc3_signature(
    *, secret_key: str, day: str, service: str, timestamp: str, canonical_request: str
) -> str:
    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    scope = f"{day}/{service}/tc3_request"
    hashed = hashlib.sha256(canonical_request.encode()).hexdigest()
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashed}"
    signing_key = mac(mac(mac(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    return hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})"
)


@dataclass
class TencentRecord:
    phone: str
    sdk_app_id: str
    template_id: str
    values: list[str]
    session_context: str
    serial_no: str
    sent_at: int
    # None until the carrier's receipt: then "SUCCESS" or "FAIL".
    report: str | None = None


class FakeTencent(FakeProvider):
    def __init__(
        self,
        *,
        secrets: dict[str, str],
        sdk_app_id: str,
        sign_names: set[str],
        templates: dict[str, int],
    ) -> None:
        super().__init__()
        self.secrets = secrets
        self.sdk_app_id = sdk_app_id
        self.sign_names = sign_names
        # Approved template ids and how many {n} values each takes.
        self.templates = templates
        self.records: list[TencentRecord] = []

    def report(self, session_context: str, status: str) -> None:
        for record in self.records:
            if record.session_context == session_context:
                record.report = status

    def handle(
        self, request: Received, scripted: Misbehaviour | None
    ) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4())

        def error(code: str, message: str) -> tuple[int, dict[str, Any]]:
            return 200, {
                "Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}
            }

        headers = request.headers
        if request.method != "POST" or urlsplit(request.path).path != "/":
            return error("InvalidParameter", "POST / expected")
        for name in (
            "authorization",
            "x-tc-action",
            "x-tc-version",
            "x-tc-timestamp",
            "x-tc-region",
        ):
            if not headers.get(name):
                return error(
                    "MissingParameter", f"The request is missing a required header `{name}`."
                )
        if headers["x-tc-version"] != "2021-01-11":
            return error("NoSuchVersion", "The API version does not exist.")
        match = _AUTHORIZATION.fullmatch(headers["authorization"])
        if match is None:
            return error("AuthFailure.InvalidAuthorization", "Authorization format is wrong.")
        timestamp = int(headers["x-tc-timestamp"])
        if abs(datetime.now(UTC).timestamp() - timestamp) > 300:
            return error("AuthFailure.SignatureExpire", "Signature expired.")
        if match["service"] != "sms" or match["day"] != datetime.fromtimestamp(
            timestamp, UTC
        ).strftime("%Y-%m-%d"):
            return error("AuthFailure.InvalidAuthorization", "Credential scope is wrong.")
        secret = self.secrets.get(match["id"])
        if secret is None:
            return error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        signed = match["signed"].split(";")
        if not {"content-type", "host"} <= set(signed) or signed != sorted(signed):
            return error("AuthFailure.InvalidAuthorization", "SignedHeaders is wrong.")
        canonical = "POST\n/\n\n{}\n{}\n{}".format(
            "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed),
            match["signed"],
            hashlib.sha256(request.body).hexdigest(),
        )
        expected = tc3_signature(
            secret_key=secret,
            day=match["day"],
            service="sms",
            timestamp=headers["x-tc-timestamp"],
            canonical_request=canonical,
        )
        if not hmac.compare_digest(expected, match["sig"]):
            return error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        if scripted is not None and scripted.code and not scripted.per_number:
            return scripted.http_status, error(scripted.code, scripted.message)[1]
        try:
            body = json.loads(request.body)
        except ValueError:
            return error("InvalidParameter", "body is not JSON")
        if headers["x-tc-action"] == "SendSms":
            return self._send(body, request_id, error, scripted)
        if headers["x-tc-action"] == "PullSmsSendStatusByPhoneNumber":
            return self._pull(body, request_id, error)
        return error("InvalidAction", "The action does not exist.")

    def _send(
        self, body: dict[str, Any], request_id: str, error: Refuse, scripted: Misbehaviour | None
    ) -> tuple[int, dict[str, Any]]:
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if name not in body:
                return error(
                    "MissingParameter", f"The request is missing a required parameter `{name}`."
                )
        if body["SmsSdkAppId"] != self.sdk_app_id:
            return error("FailedOperation.SdkAppIdNotExist", "SdkAppId does not exist.")
        if body.get("SignName") not in self.sign_names:
            return error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误")
        count = self.templates.get(str(body["TemplateId"]))
        if count is None:
            return error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配")
        values = body.get("TemplateParamSet") or []
        if len(values) != count or not all(isinstance(v, str) for v in values):
            return error(
                "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                "请求内容与审核通过的模板内容不匹配",
            )
        statuses = []
        for phone in body["PhoneNumberSet"]:
            if scripted is not None and scripted.per_number and scripted.code:
                statuses.append(
                    {
                        "SerialNo": "",
                        "PhoneNumber": phone,
                        "Fee": 0,
                        "SessionContext": "",
                        "Code": scripted.code,
                        "Message": scripted.message,
                        "IsoCode": "CN",
                    }
                )
                continue
            if not re.fullmatch(r"\+861\d{10}", phone):
                statuses.append(
                    {
                        "SerialNo": "",
                        "PhoneNumber": phone,
                        "Fee": 0,
                        "SessionContext": "",
                        "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                        "Message": "手机号格式错误",
                        "IsoCode": "CN",
                    }
                )
                continue
            record = TencentRecord(
                phone=phone,
                sdk_app_id=body["SmsSdkAppId"],
                template_id=str(body["TemplateId"]),
                values=list(values),
                session_context=str(body.get("SessionContext", "")),
                serial_no=f"5000:{uuid.uuid4().int % 10**28}",
                sent_at=int(datetime.now(UTC).timestamp()),
            )
            self.records.append(record)
            statuses.append(
                {
                    "SerialNo": record.serial_no,
                    "PhoneNumber": phone,
                    "Fee": 1,
                    "SessionContext": record.session_context,
                    "Code": "Ok",
                    "Message": "send success",
                    "IsoCode": "CN",
                }
            )
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}

    def _pull(
        self, body: dict[str, Any], request_id: str, error: Refuse
    ) -> tuple[int, dict[str, Any]]:
        for name in ("BeginTime", "Offset", "Limit", "PhoneNumber", "SmsSdkAppId"):
            if name not in body:
                return error(
                    "MissingParameter", f"The request is missing a required parameter `{name}`."
                )
        if body["SmsSdkAppId"] != self.sdk_app_id:
            return error("FailedOperation.SdkAppIdNotExist", "SdkAppId does not exist.")
        if not 0 < int(body["Limit"]) <= 100:
            return error("InvalidParameterValue", "Limit is at most 100.")
        begin, end = int(body["BeginTime"]), int(body.get("EndTime") or 2**31)
        receipts = [
            {
                "UserReceiveTime": record.sent_at + 5,
                "CountryCode": "86",
                "SubscriberNumber": record.phone.removeprefix("+86"),
                "PhoneNumber": record.phone,
                "SerialNo": record.serial_no,
                "ReportStatus": record.report,
                "Description": "DELIVRD" if record.report == "SUCCESS" else "MK:0001",
                "SessionContext": record.session_context,
            }
            for record in self.records
            if record.phone == body["PhoneNumber"]
            and record.report is not None
            and begin <= record.sent_at < end
        ]
        return 200, {
            "Response": {
                "PullSmsSendStatusSet": receipts[: int(body["Limit"])],
                "RequestId": request_id,
            }
        }
