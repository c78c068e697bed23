"""The staff console: the home with a searchable menu of what the signed-in roles may do,
staff accounts for administrators, and the audit viewer.

Thin, like every floor page: each route finds who is at the screen, calls one staff
function inside one transaction and renders; a refusal is a sentence on the page and changes
nothing. The rules of accounts (the password policy, a taken username, an administrator's own
account) are `staff.accounts`'; the menu's table is `frontdesk.rules.CONSOLE`. A temporary
password is shown once, on the answer to the form that made it (never in a URL), and that
answer is not stored by the browser. The audit viewer masks any identity or phone number an
entry holds (`frontdesk.rules.masked`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.frontdesk import rules
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.kit import i18n
from yuyue.kit.errors import NotFound, ValidationFailed, YuyueError
from yuyue.kit.localtime import local_instant
from yuyue.payments import export as tables
from yuyue.scheduling import service as scheduling
from yuyue.staff import accounts
from yuyue.staff import audit as audit_trail
from yuyue.staff import service as staff_service
from yuyue.staff.api import StaffAccountCreate
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry, StaffSession, StaffUser
from yuyue.staff.rules import Actor, SessionEnd
from yuyue.web.pagekit import FormFields, FormRefused, done_notice, parse_date, parse_uuid

router = APIRouter(include_in_schema=False)
HOME_PATH = "/staff"
ACCOUNTS_PATH = "/staff/accounts"
AUDIT_PATH = "/staff/audit"
SESSIONS_PATH = "/staff/sessions"
SECOND_FACTOR_ROLES_PATH = "/staff/second-factor-roles"
NO_STORE = {"Cache-Control": "no-store"}

i18n.register(
    {
        "console.area": ("工作台", "Console"),
        "console.home": ("工作台", "Console"),
        "console.title": ("我的工作台", "My console"),
        "console.search": ("搜索功能", "Find a page"),
        "console.search_hint": (
            "输入名称或关键词，如“对账”“账号”“报到”。",
            "Type a name or a word such as “reconciliation”, “accounts”, “check-in”.",
        ),
        "console.search_button": ("搜索", "Search"),
        "console.none": ("没有匹配的功能。", "No page matches."),
        "console.roles": ("我的角色", "My roles"),
        "console.group.visit_day": ("门诊当天", "The visit day"),
        "console.group.scheduling": ("排班与门诊管理", "Scheduling and clinics"),
        "console.group.finance": ("财务", "Finance"),
        "console.group.insight": ("报表与分析", "Reports"),
        "console.group.administration": ("系统管理", "Administration"),
        "console.group.me": ("我的账号", "My account"),
        "console.entry.desk": ("分诊台", "Triage desk"),
        "console.entry.desk_hint": (
            "查找今天的预约、报到、现场挂号、调整候诊队列。",
            "Find today's appointments, check in, register walk-ins, arrange the queues.",
        ),
        "console.entry.window": ("挂号窗口", "Registration window"),
        "console.entry.window_hint": (
            "查找或登记患者，为今天及以后挂号，收费、打印凭条，退号并退费。",
            "Find or register patients, book any day from today, take the fee and print "
            "the slip, cancel and refund.",
        ),
        "console.entry.appeals": ("爽约申诉", "No-show appeals"),
        "console.entry.appeals_hint": (
            "处理患者对爽约限制的申诉。",
            "Decide patients' appeals against no-show bans.",
        ),
        "console.entry.doctor": ("医生工作站", "Doctor's workstation"),
        "console.entry.doctor_hint": (
            "叫号、开始和结束就诊。",
            "Call the next patient, start and finish consultations.",
        ),
        "console.entry.approvals": ("更改审批", "Change approvals"),
        "console.entry.approvals_hint": (
            "已确认预约的逾期退号、改约、更换就诊人，由值班主管审批后生效。",
            "Late cancellations, moves and changes of patient of confirmed bookings, "
            "carried out when a supervisor approves.",
        ),
        "console.entry.stop_clinic": ("停诊与替诊", "Stop a clinic"),
        "console.entry.stop_clinic_hint": (
            "停诊某一出诊，安排同级别医生替诊或取消全部预约，每位患者都会收到通知。",
            "Stop a clinic session: a colleague of the same level takes the bookings over, "
            "or they are cancelled; every patient is told.",
        ),
        "console.entry.announcements": ("医院公告", "Announcements"),
        "console.entry.announcements_hint": (
            "发布或撤下公告（系统维护、门诊延迟、院区关闭），可短信通知相关患者。",
            "Post or withdraw notices (maintenance, a delayed clinic, a closed campus), "
            "optionally texting the patients they concern.",
        ),
        "console.entry.reports": ("统计报表", "Reports"),
        "console.entry.reports_hint": (
            "各渠道预约量、需求热力图、号源利用、爽约与取消、候诊时长、收入与退款。",
            "Bookings by channel, demand heat map, use of places, no-shows and cancellations, "
            "waits, revenue and refunds.",
        ),
        "console.entry.quota_advice": ("号源配额建议", "Quota advice"),
        "console.entry.quota_advice_hint": (
            "按最近几周的约满速度、候补、爽约与现场挂号，建议每诊次号源和号池比例；可修改后采纳。",
            "Places per session and the pool split advised from recent sell-outs, waitlists, "
            "no-shows and walk-ins; edit and accept.",
        ),
        "console.entry.finance_orders": ("订单与退款", "Orders and refunds"),
        "console.entry.finance_orders_hint": (
            "查询支付订单和退款，导出 CSV 或 Excel。",
            "Find payment orders and refunds; export CSV or Excel.",
        ),
        "console.entry.finance_reconciliation": ("每日对账", "Daily reconciliation"),
        "console.entry.finance_reconciliation_hint": (
            "与微信支付、支付宝逐日对账，处理差异。",
            "Reconcile each day with WeChat Pay and Alipay; handle the differences.",
        ),
        "console.entry.accounts": ("员工账号", "Staff accounts"),
        "console.entry.accounts_hint": (
            "新增员工、分配角色和科室、停用或启用、重置密码或动态验证码。",
            "Add staff, assign roles and departments, disable or re-enable, reset a password "
            "or a second factor.",
        ),
        "console.entry.audit": ("审计日志", "Audit trail"),
        "console.entry.audit_hint": (
            "谁在何时对哪条记录做了什么，可筛选和导出。",
            "Who did what to which record and when; filter and export.",
        ),
        "console.entry.password": ("修改密码", "Change my password"),
        "console.entry.password_hint": (
            "设置新的登录密码。",
            "Set a new password for signing in.",
        ),
        "console.entry.sessions": ("我的登录", "My sign-ins"),
        "console.entry.sessions_hint": (
            "查看在哪些设备上登录过，结束不再使用或不认识的登录。",
            "See where you are signed in and end sign-ins you no longer use or do not know.",
        ),
        "role.admin": ("管理员", "Administrator"),
        "role.scheduler": ("排班员", "Scheduler"),
        "role.registrar": ("挂号员", "Registrar"),
        "role.nurse": ("护士", "Nurse"),
        "role.doctor": ("医生", "Doctor"),
        "role.finance": ("财务", "Finance"),
        "role.supervisor": ("值班主管", "Supervisor"),
        "role.auditor": ("审计员", "Auditor"),
        # staff accounts
        "accounts.title": ("员工账号", "Staff accounts"),
        "accounts.add": ("新增员工", "Add a member of staff"),
        "accounts.username": ("用户名", "Username"),
        "accounts.username_hint": (
            "字母、数字、点、下划线或连字符。",
            "Letters, digits, dots, underscores or hyphens.",
        ),
        "accounts.display_name": ("姓名", "Name"),
        "accounts.roles": ("角色", "Roles"),
        "accounts.department": ("科室", "Department"),
        "accounts.doctor": ("关联医生", "Works as doctor"),
        "accounts.none": ("无", "None"),
        "accounts.password": ("初始密码（可不填）", "First password (optional)"),
        "accounts.password_hint": (
            "不填则自动生成。至少 10 个字符，不能只有数字，不能是用户名或常见密码。"
            "员工首次登录时必须修改。",
            "Leave empty to generate one. At least 10 characters, not only digits, not the "
            "username, not a common password. It must be changed at the first sign-in.",
        ),
        "accounts.create": ("创建账号", "Create the account"),
        "accounts.state": ("状态", "State"),
        "accounts.second_factor": ("动态验证码", "Second factor"),
        "accounts.active": ("正常", "Active"),
        "accounts.disabled": ("已停用", "Disabled"),
        "accounts.locked": ("已锁定", "Locked"),
        "accounts.must_change": ("待改密码", "Must change password"),
        "accounts.enrolled": ("已设置", "Set up"),
        "accounts.not_enrolled": ("未设置", "Not set up"),
        "accounts.open": ("管理", "Manage"),
        "accounts.back": ("返回员工账号", "Back to staff accounts"),
        "accounts.save": ("保存", "Save"),
        "accounts.disable": ("停用账号", "Disable the account"),
        "accounts.disable_hint": (
            "停用后该员工立即退出，无法再登录。",
            "The person is signed out at once and can no longer sign in.",
        ),
        "accounts.enable": ("重新启用", "Re-enable the account"),
        "accounts.reset_password": ("重置密码", "Reset the password"),
        "accounts.reset_password_hint": (
            "生成临时密码，员工下次登录时必须修改；其所有登录立即结束。",
            "Makes a temporary password that must be changed at the next sign-in; every "
            "sign-in of the person ends now.",
        ),
        "accounts.reset_second_factor": ("重置动态验证码", "Reset the second factor"),
        "accounts.reset_second_factor_hint": (
            "删除其验证器和恢复码（例如手机丢失），下次登录时重新设置。",
            "Removes the authenticator and recovery codes (a lost phone, say); it is set up "
            "again at the next sign-in.",
        ),
        "accounts.temporary_title": ("临时密码", "Temporary password"),
        "accounts.temporary_hint": (
            "请将此临时密码当面或通过安全方式交给 {name}（{username}）。密码只显示这一次，"
            "首次登录时必须修改。",
            "Give this temporary password to {name} ({username}) in person or another safe "
            "way. It is shown only now and must be changed at the first sign-in.",
        ),
        "accounts.done.created": ("已创建账号 {username}。", "Account {username} created."),
        "accounts.done.changed": ("已保存。", "Saved."),
        "accounts.done.disabled": (
            "账号已停用，其登录已结束。",
            "The account is disabled and its sign-ins ended.",
        ),
        "accounts.done.enabled": ("账号已重新启用。", "The account is enabled again."),
        "accounts.done.password_reset": (
            "密码已重置，其登录已结束。",
            "The password is reset and the person's sign-ins ended.",
        ),
        "accounts.done.second_factor_reset": (
            "动态验证码已重置，其登录已结束。",
            "The second factor is reset and the person's sign-ins ended.",
        ),
        "console.field.username": ("用户名", "username"),
        "console.field.display_name": ("姓名", "name"),
        "console.field.roles": ("至少选择一个角色", "at least one role"),
        "console.field.password": ("初始密码", "first password"),
        "console.field.department_id": ("科室", "department"),
        "console.field.doctor_id": ("关联医生", "doctor"),
        "console.field.date": ("日期（YYYY-MM-DD）", "dates (YYYY-MM-DD)"),
        "console.field.entity_id": ("记录编号", "record id"),
        "console.field.kind": ("类别", "kind"),
        "accounts.audit_link": ("查看此账号的审计记录", "This account's audit trail"),
        # audit viewer
        "audit.title": ("审计日志", "Audit trail"),
        "audit.person": ("操作人", "Person"),
        "audit.person_hint": ("姓名或编号的一部分", "Part of the name or id"),
        "audit.entity_type": ("记录类型", "Record type"),
        "audit.entity_id": ("记录编号", "Record id"),
        "audit.action": ("操作", "Action"),
        "audit.action_hint": ("如 staff.created 或 staff.", "e.g. staff.created or staff."),
        "audit.date_from": ("开始日期", "From"),
        "audit.date_to": ("结束日期", "To"),
        "audit.any": ("全部", "Any"),
        "audit.search": ("查询", "Search"),
        "audit.export_csv": ("导出 CSV", "Export CSV"),
        "audit.at": ("时间", "When"),
        "audit.record": ("记录", "Record"),
        "audit.before": ("之前", "Before"),
        "audit.after": ("之后 / 详情", "After / details"),
        "audit.none": ("没有符合条件的记录。", "No entry matches."),
        "audit.newer": ("← 较新", "← Newer"),
        "audit.older": ("较早 →", "Older →"),
        "audit.page": ("第 {n} 页", "Page {n}"),
        "audit.masked_note": (
            "证件号和手机号已隐去部分数字。",
            "Identity and phone numbers are partly hidden.",
        ),
        "audit.kind.channel": ("渠道", "channel"),
        "audit.kind.system": ("系统", "system"),
        "audit.action.staff.created": ("新增员工账号", "staff account created"),
        "audit.action.staff.changed": ("修改员工账号", "staff account changed"),
        "audit.action.staff.disabled": ("停用员工账号", "staff account disabled"),
        "audit.action.staff.enabled": ("启用员工账号", "staff account enabled"),
        "audit.action.staff.password_reset": ("重置密码", "password reset"),
        "audit.action.staff.password_changed": ("修改密码", "password changed"),
        "audit.action.staff.second_factor_reset": ("重置动态验证码", "second factor reset"),
        "audit.action.staff.second_factor_enrolled": ("设置动态验证码", "second factor set up"),
        "audit.action.staff.sessions_ended": ("结束登录", "sign-ins ended"),
        "audit.action.audit.exported": ("导出审计日志", "audit trail exported"),
        "audit.action.read.lookup": ("查找患者", "patient looked up"),
        "audit.action.read.record": ("查看患者信息", "patient's record read"),
        "audit.action.read.unmask": ("查看完整号码", "full number shown"),
        "audit.entry_kind": ("类别", "Kind"),
        "audit.entry_kind.changes": ("更改", "Changes"),
        "audit.entry_kind.reads": ("患者信息读取（全部）", "Reads of patient data (all)"),
        "audit.entry_kind.read.lookup": ("查找患者", "Patient look-ups"),
        "audit.entry_kind.read.record": ("查看患者信息", "Patient records read"),
        "audit.entry_kind.read.unmask": ("查看完整号码", "Full numbers shown"),
    }
)


# --- the home ---------------------------------------------------------------------------------


def _search_text(entry: rules.ConsoleEntry) -> str:
    """What the menu's search looks in: the label and description in both languages and the
    entry's keywords, so a person finds a page in either language."""
    words = [
        i18n.translate(key, locale)
        for key in (entry.label, entry.description)
        for locale in i18n.LOCALES
    ]
    return " ".join([*words, *entry.keywords]).casefold()


@router.get(HOME_PATH, response_class=HTMLResponse)
async def home(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *Role)
    query = request.query_params.get("q", "").strip()[:100]
    # Entries the search leaves out are sent hidden, so the browser's filter can bring them
    # back as the words change.
    searchable = [(entry, _search_text(entry)) for entry in rules.menu_for(actor.roles)]
    entries = [(entry, text, rules.matches(text, query)) for entry, text in searchable]
    return render(
        request,
        who,
        "console_home.html",
        entries=entries,
        any_shown=any(shown for _, _, shown in entries),
        query=query,
        roles=sorted(actor.roles),
    )


# --- staff accounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Places:
    """The departments and doctors an account may be linked to."""

    departments: list[Any]
    doctors: list[Any]

    def department_name(self, department_id: uuid.UUID | None, pick: Any) -> str:
        for row in self.departments:
            if row.id == department_id:
                return str(pick(row.name, row.name_en))
        return ""

    def doctor_name(self, doctor_id: uuid.UUID | None) -> str:
        for row in self.doctors:
            if row.id == doctor_id:
                return str(row.name)
        return ""


async def _places(session: AsyncSession, who: FloorVisitor) -> Places:
    return Places(
        departments=await scheduling.active_departments(session, hospital_id=who.hospital.id),
        doctors=await scheduling.active_doctors(session, hospital_id=who.hospital.id),
    )


def _state(user: StaffUser, who: FloorVisitor) -> str:
    if not user.active:
        return "disabled"
    if user.locked_until is not None and user.locked_until > who.now:
        return "locked"
    return "active"


def _accounts_require(request: Request, who: FloorVisitor) -> Actor:
    return who.require(request, *rules.ACCOUNTS_ROLES)


async def _accounts_page(
    request: Request,
    who: FloorVisitor,
    *,
    status: int = 200,
    error: str | None = None,
    form: Mapping[str, Any] | None = None,
) -> Response:
    actor = _accounts_require(request, who)
    async with who.ctx.db.read() as session:
        users = await accounts.accounts(session, actor=actor)
        places = await _places(session, who)
        required = await staff_service.second_factor_roles(session, actor.hospital_id)
    return render(
        request,
        who,
        "console_accounts.html",
        status=status,
        users=users,
        places=places,
        state=lambda user: _state(user, who),
        all_roles=list(Role),
        error=error,
        form=form or {"roles": []},
        second_factor_roles={role.value for role in required},
        done_text=done_notice(request, who, "accounts.done.{done}", ("second_factor_roles",)),
    )


@router.get(ACCOUNTS_PATH, response_class=HTMLResponse)
async def accounts_page(request: Request, who: StaffDep) -> Response:
    return await _accounts_page(request, who)


# The console's account pages name a field in an error by `console.field.*`.
FIELDS = FormFields("console.field")


def _one_of(value: str, rows: list[Any], field: str) -> uuid.UUID | None:
    """The id of one of the offered rows, or None for "none"; anything else is refused."""
    if not value:
        return None
    for row in rows:
        if str(row.id) == value:
            return uuid.UUID(str(row.id))
    raise ValidationFailed(summary=field)


async def _account_input(
    request: Request, values: Mapping[str, str], places: Places
) -> tuple[dict[str, Any], uuid.UUID | None, uuid.UUID | None]:
    """The submitted account form (its CSRF token already checked), its roles as a list, and
    the department and doctor, each one of those offered."""
    submitted = await request.form()
    roles = [str(role) for role in submitted.getlist("roles")]
    data: dict[str, Any] = {
        "username": values.get("username", "").strip(),
        "display_name": values.get("display_name", "").strip(),
        "roles": roles,
        "department_id": values.get("department_id", ""),
        "doctor_id": values.get("doctor_id", ""),
        "password": values.get("password", ""),
    }
    department = _one_of(data["department_id"], places.departments, "department_id")
    doctor = _one_of(data["doctor_id"], places.doctors, "doctor_id")
    return data, department, doctor


def _refusal(error: YuyueError, who: FloorVisitor) -> str:
    return FIELDS.refused(who, error).sentence


@router.post(ACCOUNTS_PATH, response_class=HTMLResponse)
async def create_account(request: Request, who: StaffDep) -> Response:
    actor = _accounts_require(request, who)
    async with who.ctx.db.read() as session:
        places = await _places(session, who)
    values = await form_of(request, who)
    data: dict[str, Any] = {"roles": []}
    try:
        data, department, doctor = await _account_input(request, values, places)
        body = StaffAccountCreate.model_validate(
            {
                "username": data["username"],
                "display_name": data["display_name"],
                "roles": data["roles"],
                "department_id": department,
                "doctor_id": doctor,
                "password": data["password"] or None,
            }
        )
    except ValidationError as invalid:
        return await _accounts_page(
            request, who, status=422, error=FIELDS.invalid(who, invalid).sentence, form=_kept(data)
        )
    except YuyueError as error:
        return await _accounts_page(
            request, who, status=error.status, error=_refusal(error, who), form=_kept(data)
        )

    async def work(session: AsyncSession) -> tuple[StaffUser, str]:
        return await accounts.create_account(
            session,
            actor=actor,
            username=body.username,
            display_name=body.display_name,
            roles=body.roles,
            department_id=body.department_id,
            doctor_id=body.doctor_id,
            now=who.now,
            password=body.password,
        )

    try:
        user, password = await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _accounts_page(
            request, who, status=refused.status, error=refused.sentence, form=_kept(data)
        )
    return _temporary_password(request, who, user, password, done="created")


def _kept(data: Mapping[str, Any]) -> dict[str, Any]:
    """What the form shows again after a refusal: everything but the password."""
    return {key: value for key, value in data.items() if key != "password"}


def _temporary_password(
    request: Request, who: FloorVisitor, user: StaffUser, password: str, *, done: str
) -> Response:
    response = render(
        request,
        who,
        "console_temporary_password.html",
        user=user,
        password=password,
        done_text=who.t(f"accounts.done.{done}", username=user.username),
    )
    response.headers.update(NO_STORE)
    return response


# What an account page says after a change (`?done=`).
ACCOUNT_DONE = ("changed", "disabled", "enabled", "second_factor_reset", "sessions_ended")


async def _account_page(
    request: Request,
    who: FloorVisitor,
    user_id: uuid.UUID,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    actor = _accounts_require(request, who)
    async with who.ctx.db.read() as session:
        user = await accounts.account(session, actor=actor, user_id=user_id)
        places = await _places(session, who)
        signed_in = await staff_service.user_sessions(session, user_id=user.id, now=who.now)
    return render(
        request,
        who,
        "console_account.html",
        status=status,
        user=user,
        places=places,
        state=_state(user, who),
        all_roles=list(Role),
        error=error,
        done_text=done_notice(request, who, "accounts.done.{done}", ACCOUNT_DONE),
        audit_link=AUDIT_PATH
        + "?"
        + urlencode({"entity_type": "staff_user", "entity_id": user.id}),
        sessions=_session_rows(signed_in, actor.session_id),
    )


@router.get(ACCOUNTS_PATH + "/{user_id}", response_class=HTMLResponse)
async def account_page(request: Request, who: StaffDep, user_id: uuid.UUID) -> Response:
    return await _account_page(request, who, user_id)


@router.post(ACCOUNTS_PATH + "/{user_id}", response_class=HTMLResponse)
async def change_account(request: Request, who: StaffDep, user_id: uuid.UUID) -> Response:
    """Roles, name, department and doctor, as the form shows them all."""
    actor = _accounts_require(request, who)
    async with who.ctx.db.read() as session:
        places = await _places(session, who)
    values = await form_of(request, who)
    try:
        data, department, doctor = await _account_input(request, values, places)
        roles = [Role(role) for role in data["roles"]]
        if not roles:
            raise ValidationFailed(summary="roles")
        name = data["display_name"]
        if not name or len(name) > 80:
            raise ValidationFailed(summary="display_name")
    except ValueError:
        return await _account_page(
            request,
            who,
            user_id,
            status=422,
            error=_refusal(ValidationFailed(summary="roles"), who),
        )
    except YuyueError as error:
        return await _account_page(
            request, who, user_id, status=error.status, error=_refusal(error, who)
        )

    async def work(session: AsyncSession) -> None:
        await accounts.change_account(
            session,
            actor=actor,
            user_id=user_id,
            roles=roles,
            display_name=name,
            department_id=department,
            doctor_id=doctor,
            fields={"roles", "display_name", "department_id", "doctor_id"},
            now=who.now,
        )

    return await _account_change(request, who, user_id, work, done="changed")


async def _account_change(
    request: Request,
    who: FloorVisitor,
    user_id: uuid.UUID,
    work: Any,
    *,
    done: str,
) -> Response:
    try:
        await who.ctx.db.transact(work)
    except NotFound:
        raise
    except YuyueError as error:
        return await _account_page(
            request, who, user_id, status=error.status, error=_refusal(error, who)
        )
    return redirect(f"{ACCOUNTS_PATH}/{user_id}?done={done}")


@router.post(ACCOUNTS_PATH + "/{user_id}/{action}", response_class=HTMLResponse)
async def account_action(
    request: Request, who: StaffDep, user_id: uuid.UUID, action: str
) -> Response:
    """Disable, enable, reset the password (shown once), reset the second factor, or end
    every sign-in of the person."""
    actor = _accounts_require(request, who)
    await form_of(request, who)
    if action == "password-reset":

        async def reset(session: AsyncSession) -> tuple[StaffUser, str]:
            return await accounts.reset_password(session, actor=actor, user_id=user_id, now=who.now)

        user, password = await who.ctx.db.transact(reset)
        return _temporary_password(request, who, user, password, done="password_reset")
    if action in ("disable", "enable"):
        active = action == "enable"

        async def work(session: AsyncSession) -> None:
            await accounts.set_active(
                session, actor=actor, user_id=user_id, active=active, now=who.now
            )

        return await _account_change(
            request, who, user_id, work, done="enabled" if active else "disabled"
        )
    if action == "end-sessions":

        async def end_all(session: AsyncSession) -> None:
            await accounts.end_user_sessions(session, actor=actor, user_id=user_id, now=who.now)

        return await _account_change(request, who, user_id, end_all, done="sessions_ended")
    if action == "second-factor-reset":

        async def reset_factor(session: AsyncSession) -> None:
            await accounts.reset_second_factor(session, actor=actor, user_id=user_id, now=who.now)

        return await _account_change(
            request, who, user_id, reset_factor, done="second_factor_reset"
        )
    raise NotFound(what="page")


@router.post(SECOND_FACTOR_ROLES_PATH, response_class=HTMLResponse)
async def set_second_factor_roles(request: Request, who: StaffDep) -> Response:
    """Which roles must sign in with a second factor (the hospital's decision); a member of
    such a role without one is sent to set it up at their next sign-in."""
    actor = _accounts_require(request, who)
    await form_of(request, who)
    chosen = list((await request.form()).getlist("second_factor_roles"))
    try:
        roles = [Role(value) for value in chosen if isinstance(value, str)]
    except ValueError:
        return await _accounts_page(
            request, who, status=422, error=_refusal(ValidationFailed(summary="roles"), who)
        )

    async def work(session: AsyncSession) -> None:
        await staff_service.set_second_factor_roles(session, actor=actor, roles=roles, now=who.now)

    await who.ctx.db.transact(work)
    return redirect(f"{ACCOUNTS_PATH}?done=second_factor_roles#second-factor")


# --- one's own sign-ins ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """One sign-in as the sessions tables show it."""

    row: StaffSession
    live: bool
    current: bool


def _session_rows(rows: list[tuple[StaffSession, bool]], current: uuid.UUID | None) -> list[SignIn]:
    return [SignIn(row, live, row.id == current) for row, live in rows]


@router.get(SESSIONS_PATH, response_class=HTMLResponse)
async def my_sessions(request: Request, who: StaffDep) -> Response:
    """The signed-in person's sign-ins (live ones and those ended in the last day), each
    with where from; any of them can be ended here (a browser left signed in elsewhere)."""
    actor = who.require(request, *Role)
    async with who.ctx.db.read() as session:
        rows = await staff_service.user_sessions(session, user_id=uuid.UUID(actor.id), now=who.now)
    return render(
        request,
        who,
        "console_sessions.html",
        sessions=_session_rows(rows, actor.session_id),
        done_text=done_notice(request, who, "sessions.done.{done}", ("ended",)),
    )


@router.post(SESSIONS_PATH + "/{session_id}/end", response_class=HTMLResponse)
async def end_my_session(request: Request, who: StaffDep, session_id: uuid.UUID) -> Response:
    """Ends one of one's own sign-ins; its cookie or token stops working at once. Ending
    the one in use signs this browser out."""
    actor = who.require(request, *Role)
    await form_of(request, who)

    async def work(session: AsyncSession) -> None:
        ended = await staff_service.end_sessions(
            session,
            user_id=uuid.UUID(actor.id),
            reason=SessionEnd.ENDED_BY_USER,
            now=who.now,
            session_id=session_id,
        )
        if not ended:
            # Someone else's, unknown, or already ended: the same answer.
            raise NotFound(what="staff_session")

    await who.ctx.db.transact(work)
    if session_id == actor.session_id:
        return redirect("/staff/signin")
    return redirect(f"{SESSIONS_PATH}?done=ended")


i18n.register(
    {
        "sessions.title": ("我的登录", "My sign-ins"),
        "sessions.link": ("我的登录设备", "My sign-ins"),
        "sessions.hint": (
            "这里列出您仍有效的登录和最近一天结束的登录。如有不认识的地点或设备，请结束它并修改密码。",
            "Your live sign-ins and those ended in the last day. If you do not recognise a "
            "place or device, end it and change your password.",
        ),
        "sessions.started": ("登录时间", "Signed in"),
        "sessions.last_seen": ("最近使用", "Last used"),
        "sessions.from": ("地址与浏览器", "Address and browser"),
        "sessions.state": ("状态", "State"),
        "sessions.live": ("有效", "Live"),
        "sessions.current": ("当前使用", "This browser"),
        "sessions.ended": ("已结束", "Ended"),
        "sessions.end": ("结束", "End"),
        "sessions.end_all": ("结束其全部登录", "End every sign-in"),
        "sessions.end_all_hint": (
            "该员工所有设备上的登录立即失效（例如交接班后忘记退出）；账号本身不受影响。",
            "Every sign-in of the person stops working at once (a shared computer left "
            "signed in, say); the account itself is unchanged.",
        ),
        "sessions.none": ("没有登录记录。", "No sign-ins."),
        "sessions.done.ended": ("该登录已结束。", "That sign-in is ended."),
        "sessions.reason.signed_out": ("已退出", "signed out"),
        "sessions.reason.password_changed": ("修改密码", "password changed"),
        "sessions.reason.password_reset": ("重置密码", "password reset"),
        "sessions.reason.second_factor_reset": ("重置动态验证码", "second factor reset"),
        "sessions.reason.disabled": ("账号停用", "account disabled"),
        "sessions.reason.ended_by_user": ("本人结束", "ended by the person"),
        "sessions.reason.ended_by_admin": ("管理员结束", "ended by an administrator"),
        "accounts.sessions": ("登录", "Sign-ins"),
        "accounts.done.sessions_ended": (
            "其全部登录已结束。",
            "Every sign-in of the person is ended.",
        ),
        "accounts.second_factor_roles": (
            "必须使用动态验证码的角色",
            "Roles that must use a second factor",
        ),
        "accounts.second_factor_roles_hint": (
            "所选角色的员工必须用验证器应用的动态验证码登录；尚未设置的，下次登录时只能先完成设置。"
            "自助机和候诊屏使用设备密钥，不受影响。",
            "Staff in the chosen roles sign in with an authenticator app's code; one without "
            "it can only set it up at the next sign-in. Kiosks and screens use device keys "
            "and are not affected.",
        ),
        "accounts.second_factor_roles_save": ("保存", "Save"),
        "accounts.done.second_factor_roles": (
            "已保存必须使用动态验证码的角色。",
            "The roles that must use a second factor are saved.",
        ),
    }
)


# --- the audit viewer -------------------------------------------------------------------------


AUDIT_COLUMNS = (
    tables.Column("at", "时间", "When", tables.ColumnKind.INSTANT),
    tables.Column("actor", "操作人", "Person"),
    tables.Column("action", "操作", "Action"),
    tables.Column("entity_type", "记录类型", "Record type"),
    tables.Column("entity_id", "记录编号", "Record id"),
    tables.Column("before", "之前", "Before"),
    tables.Column("after", "之后 / 详情", "After / details"),
)
_FILTER_FIELDS = (
    "person",
    "entity_type",
    "entity_id",
    "action",
    "kind",
    "date_from",
    "date_to",
)


def _kind(value: str) -> str:
    if value and value not in audit_trail.KINDS:
        raise ValidationFailed(summary="kind")
    return value


def _audit_query(params: Mapping[str, str], who: FloorVisitor) -> audit_trail.AuditQuery:
    """The filter from the page's query; dates are the hospital's calendar days, `date_to`
    included."""
    entity_id = parse_uuid(params.get("entity_id"), field="entity_id")
    tz = who.hospital.timezone
    first, last = parse_date(params.get("date_from")), parse_date(params.get("date_to"))
    return audit_trail.AuditQuery(
        person=params.get("person", "")[:80],
        entity_type=params.get("entity_type", "")[:40],
        entity_id=entity_id,
        action=params.get("action", "")[:40],
        kind=_kind(params.get("kind", "")),
        since=local_instant(first, time(0), tz) if first else None,
        until=local_instant(last + timedelta(days=1), time(0), tz) if last else None,
    )


def _shown_values(values: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not values:
        return []
    shown = rules.masked(values)
    return [
        (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in shown.items()
    ]


def _as_text(values: dict[str, Any] | None) -> str:
    return json.dumps(rules.masked(values), ensure_ascii=False, sort_keys=True) if values else ""


def _who(entry: AuditEntry, who: FloorVisitor) -> str:
    kind, name = rules.audit_actor_name(entry.actor)
    return name if kind == "staff" else f"{who.t(f'audit.kind.{kind}')}: {name}"


def _action(action: str, who: FloorVisitor) -> str:
    key = f"audit.action.{action}"
    named = who.t(key)
    return action if named == key else f"{named} ({action})"


@router.get(AUDIT_PATH, response_class=HTMLResponse)
async def audit_page(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *rules.AUDIT_ROLES)
    params = {name: request.query_params.get(name, "").strip() for name in _FILTER_FIELDS}
    error: str | None = None
    try:
        query = _audit_query(params, who)
    except YuyueError as refused:
        error, query = _refusal(refused, who), None
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    if query is not None and request.query_params.get("format") == "csv":
        return await _audit_csv(who, actor, query)
    async with who.ctx.db.read() as session:
        kinds = await audit_trail.entity_types(session, actor=actor)
        found = (
            await audit_trail.search(session, actor=actor, query=query, page=page)
            if query is not None
            else audit_trail.AuditPage([], 1, False)
        )
    kept = {name: value for name, value in params.items() if value}
    return render(
        request,
        who,
        "console_audit.html",
        status=422 if error else 200,
        error=error,
        params=params,
        kinds=kinds,
        entry_kinds=audit_trail.KINDS,
        found=found,
        rows=[
            {
                "entry": entry,
                "who": _who(entry, who),
                "action": _action(entry.action, who),
                "before": _shown_values(entry.before),
                "after": _shown_values(entry.after),
                "record_link": AUDIT_PATH
                + "?"
                + urlencode({"entity_type": entry.entity_type, "entity_id": entry.entity_id}),
            }
            for entry in found.entries
        ],
        query_string=urlencode(kept),
        newer=urlencode({**kept, "page": page - 1}) if page > 1 else None,
        older=urlencode({**kept, "page": page + 1}) if found.has_next else None,
    )


async def _audit_csv(who: FloorVisitor, actor: Actor, query: audit_trail.AuditQuery) -> Response:
    async def work(session: AsyncSession) -> list[AuditEntry]:
        return await audit_trail.export(session, actor=actor, query=query, now=who.now)

    entries = await who.ctx.db.transact(work)
    rows = [
        {
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "entity_type": entry.entity_type,
            "entity_id": str(entry.entity_id),
            "before": _as_text(entry.before),
            "after": _as_text(entry.after),
        }
        for entry in entries
    ]
    data = tables.to_csv(rows, AUDIT_COLUMNS, locale=who.locale, tz=who.hospital.timezone)
    stamp = who.today.isoformat()
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
            **NO_STORE,
        },
    )
