"""Every sentence of the hospital-floor pages, in zh-CN and English."""

from __future__ import annotations

from yuyue.kit import i18n

i18n.register(
    {
        # staff sign-in
        "floor.staff_area": ("工作人员", "Staff"),
        "floor.staff_sign_in": ("工作人员登录", "Staff sign-in"),
        "floor.hospital": ("医院", "Hospital"),
        "floor.username": ("用户名", "Username"),
        "floor.password": ("密码", "Password"),
        "floor.sign_in": ("登录", "Sign in"),
        "floor.sign_out": ("退出", "Sign out"),
        "floor.sign_in_missing": (
            "请填写用户名和密码。",
            "Please enter your username and password.",
        ),
        "floor.reason_required": ("请填写原因。", "Please give a reason."),
        "floor.choose_session": ("请选择出诊。", "Please choose a clinic session."),
        "floor.no_sessions_today": ("今天没有出诊。", "No clinic sessions today."),
        "floor.room": ("诊室", "Room"),
        "floor.minutes": ("{n} 分钟", "{n} min"),
        "floor.people": ("{n} 人", "{n}"),
        "floor.live": ("实时", "Live"),
        # kiosk
        "kiosk.area": ("自助报到", "Self check-in"),
        "kiosk.setup": ("设置自助机", "Set up this kiosk"),
        "kiosk.setup_hint": (
            "请工作人员输入本院为自助机创建的密钥（渠道 kiosk）。密钥只保存在本机。",
            "Staff: enter the key the hospital created for kiosks (channel kiosk). "
            "It is kept on this device only.",
        ),
        "kiosk.key": ("自助机密钥", "Kiosk key"),
        "kiosk.save": ("保存", "Save"),
        "kiosk.key_invalid": (
            "该密钥无效、已停用或不是自助机密钥。",
            "This key is not valid, was revoked, or is not a kiosk key.",
        ),
        "kiosk.title": ("自助报到", "Check in"),
        "kiosk.scan_hint": (
            "请将预约二维码对准扫描口",
            "Hold your appointment QR code to the scanner",
        ),
        "kiosk.token": ("扫描内容", "Scanned code"),
        "kiosk.or_code": (
            "或输入 8 位预约码和手机号后 4 位",
            "Or type the 8-digit code and the last 4 digits of your phone",
        ),
        "kiosk.code": ("预约码（8 位）", "Appointment code (8 digits)"),
        "kiosk.phone_last4": ("手机号后 4 位", "Last 4 digits of phone"),
        "kiosk.check_in": ("报到", "Check in"),
        "kiosk.clear": ("清除", "Clear"),
        "kiosk.delete": ("退格", "Delete"),
        "kiosk.code_format": (
            "请输入 8 位数字预约码和手机号后 4 位数字。",
            "Please enter the 8-digit code and the last 4 digits of your phone.",
        ),
        "kiosk.nothing_scanned": (
            "没有读到二维码，请重新扫描。",
            "Nothing was read; please scan again.",
        ),
        "kiosk.checked_in": ("报到成功", "You are checked in"),
        "kiosk.already": (
            "您已报到，无需重复报到。以下是您的排队信息。",
            "You were already checked in; here is your place in the queue.",
        ),
        "kiosk.ticket": ("排队小票", "Queue ticket"),
        "kiosk.queue_number": ("排队号", "Queue number"),
        "kiosk.people_ahead": ("前面还有", "People ahead"),
        "kiosk.wait": ("预计等候", "Estimated wait"),
        "kiosk.print": ("打印小票", "Print ticket"),
        "kiosk.done": ("完成", "Done"),
        "kiosk.ticket_hint": (
            "请在候诊区等候，留意叫号屏幕和广播。",
            "Please wait in the waiting area and watch the screen for your number.",
        ),
        # paying at the kiosk
        "kiosk.pay_title": ("扫码支付挂号费", "Pay the registration fee"),
        "kiosk.pay_unpaid": (
            "该预约尚未支付。请用手机微信扫描下方二维码支付，支付后即完成预约。",
            "This appointment is not paid yet. Scan the code below with WeChat on your "
            "phone; the booking is confirmed once you pay.",
        ),
        "kiosk.pay_fee": ("应付金额", "Amount"),
        "kiosk.pay_until": ("请在此时间前支付", "Pay before"),
        "kiosk.pay_waiting": (
            "正在等待支付结果，本页会自动刷新。",
            "Waiting for your payment; this page refreshes by itself.",
        ),
        "kiosk.pay_qr": ("微信支付二维码", "WeChat Pay QR code"),
        "kiosk.paid": (
            "支付成功，预约已确认。请再次扫描凭证或输入预约码报到。",
            "Paid: your booking is confirmed. Scan your voucher or enter your code again "
            "to check in.",
        ),
        "kiosk.pay_link_invalid": (
            "支付页面已过期，请重新扫描凭证或输入预约码。",
            "This payment page has expired; please scan your voucher or enter your code again.",
        ),
        "kiosk.yuan": ("¥{amount}", "¥{amount}"),
        # triage desk
        "desk.area": ("分诊台", "Triage desk"),
        "desk.title": ("分诊台", "Triage desk"),
        "desk.search": ("查询", "Search"),
        "desk.search_label": (
            "预约凭证、预约码、证件号或手机号",
            "Voucher, code, ID number or phone",
        ),
        "desk.search_hint": (
            "可扫描凭证二维码；只查找今天的预约。",
            "You can scan the voucher; only today's appointments are found.",
        ),
        "desk.none_found": ("没有找到今天的预约。", "No appointment today matches."),
        "desk.patient": ("患者", "Patient"),
        "desk.session": ("出诊", "Session"),
        "desk.status": ("状态", "Status"),
        "desk.check_in": ("报到", "Check in"),
        "desk.checked_in_ok": ("已报到，排队号 {number}。", "Checked in: number {number}."),
        "desk.already_ok": (
            "之前已报到，排队号 {number}。",
            "Already checked in: number {number}.",
        ),
        "desk.walk_in": ("现场挂号", "Walk-in registration"),
        "desk.walk_in_hint": (
            "为现场患者挂当天的现场号并立即报到。",
            "Registers a patient standing here into today's on-site places and checks them in.",
        ),
        "desk.walk_in_ok": (
            "已挂号并报到，排队号 {number}。",
            "Registered and checked in: number {number}.",
        ),
        "desk.name": ("姓名", "Name"),
        "desk.id_type": ("证件类型", "Document"),
        "desk.id_number": ("证件号码", "Document number"),
        "desk.phone": ("手机号", "Mobile number"),
        "desk.payment_reference": ("收费单号（收费号别）", "Receipt number (paid levels)"),
        "desk.priority": ("优先", "Priority"),
        "desk.no_priority": ("无", "None"),
        "desk.reason": ("原因", "Reason"),
        "desk.set_priority": ("设置优先", "Set priority"),
        "desk.priority_ok": ("已为 {number} 号设置优先。", "Priority set for number {number}."),
        "desk.move": ("调整顺序", "Move"),
        "desk.move_ok": ("{number} 号已调整顺序。", "Number {number} was moved."),
        "desk.before": ("排在此号之前", "Put before number"),
        "desk.after": ("排在此号之后", "Put after number"),
        "desk.queues": ("今日候诊队列", "Today's queues"),
        "desk.queue_of": ("队列", "Queue"),
        "desk.waiting": ("候诊 {n} 人", "{n} waiting"),
        "desk.register": ("挂号并报到", "Register and check in"),
        "desk.screen": ("候诊屏", "Waiting-room screen"),
        # doctor
        "doctor.area": ("医生工作站", "Doctor's workstation"),
        "doctor.title": ("医生工作站", "Doctor's workstation"),
        "doctor.not_linked": (
            "您的账号未关联出诊医生，请联系管理员。",
            "Your account is not linked to a doctor; please ask an administrator.",
        ),
        "doctor.no_session": ("您今天没有出诊。", "You have no clinic session today."),
        "doctor.call_next": ("叫下一位", "Call next"),
        "doctor.recall": ("重呼", "Recall"),
        "doctor.skip": ("过号", "Skip"),
        "doctor.start": ("开始就诊", "Start"),
        "doctor.finish": ("结束就诊", "Finish"),
        "doctor.return_visit": ("需回诊", "Return visit needed"),
        "doctor.return_marked": ("已标记回诊", "Return visit marked"),
        "doctor.current": ("当前患者", "Current patient"),
        "doctor.nobody_current": ("当前没有叫号中的患者。", "Nobody is called right now."),
        "doctor.line": ("候诊队列", "Waiting"),
        "doctor.done": ("已就诊", "Seen"),
        "doctor.called_ok": ("已叫 {number} 号。", "Called number {number}."),
        "doctor.empty": ("没有候诊的患者。", "Nobody is waiting."),
        "priority.emergency": ("急诊", "Emergency"),
        "priority.military": ("军人", "Military service"),
        "priority.disabled": ("残疾人", "Disability"),
        "priority.elderly": ("老年人", "Elderly"),
        "priority.return_visit": ("回诊", "Return visit"),
        # waiting-room screen
        "screen.title": ("候诊叫号", "Now calling"),
        "screen.calling": ("请以下患者就诊", "Now calling"),
        "screen.next": ("请准备", "Next"),
        "screen.nobody": ("暂无叫号", "No calls yet"),
        "screen.please": ("请", "Number"),
        "screen.number_suffix": ("号", ""),
        "screen.go_to": ("到", "to"),
        "screen.state.called": ("请进诊室", "Please come in"),
        "screen.state.in_consultation": ("就诊中", "In consultation"),
        "screen.enable_sound": ("点击开启语音播报", "Tap to turn on announcements"),
        "screen.announce": (
            "请 {number} 号 {name} 到 {room} 就诊",
            "Number {number}, {name}, please go to {room}",
        ),
        "screen.room_of": ("{room}", "{room}"),
        "screen.waiting_total": ("候诊 {n} 人", "{n} waiting"),
        # the patient's live position
        "visit.live_title": ("排队情况", "Your place in the queue"),
        "visit.queue_number": ("排队号", "Queue number"),
        "visit.people_ahead": ("前面还有 {n} 人", "{n} ahead of you"),
        "visit.wait": ("预计等候约 {n} 分钟", "About {n} minutes to wait"),
        "visit.come_back": (
            "快到您了，请回到 {room} 门口候诊。",
            "Your turn is near: please come back to {room}.",
        ),
        "visit.leave_home": (
            "按目前进度，请在 {at} 前出发来院。",
            "At the current pace, please leave for the hospital by {at}.",
        ),
        "visit.called": (
            "正在叫您的号，请到 {room} 就诊。",
            "You are being called: please go to {room}.",
        ),
        "visit.in_consultation": ("正在就诊", "In consultation"),
        "visit.finished": ("本次就诊已结束", "This visit is over"),
        "visit.skipped": (
            "您已过号，请尽快回到 {room} 门口，护士会重新安排。",
            "You missed your call: please come back to {room}; the nurse will place you again.",
        ),
    }
)
