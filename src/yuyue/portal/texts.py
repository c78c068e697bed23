"""Every sentence of the patient pages, in zh-CN and English."""

from __future__ import annotations

from yuyue.kit import i18n

i18n.register(
    {
        "page.brand": ("预约挂号", "Appointments"),
        "page.skip": ("跳到正文", "Skip to content"),
        "page.large_text": ("大字版", "Large text"),
        "page.normal_text": ("标准字号", "Normal text"),
        "page.inbox": ("消息", "Messages"),
        "page.inbox_unread": ("消息，{n} 条未读", "Messages, {n} unread"),
        "page.inbox_hint": ("预约通知与提醒", "Notices and reminders"),
        "page.sign_in": ("登录", "Sign in"),
        # Brackets belong to the language: full-width around Chinese, half-width in English.
        "page.sign_out_of": ("退出登录（{phone}）", "Sign out ({phone})"),
        "page.sign_in_hint": (
            "用手机号和短信验证码登录后即可预约、查看和取消。",
            "Sign in with your mobile number and a text-message code to book, view and cancel.",
        ),
        "page.sign_in_to_book": (
            "登录后选择就诊人并预约。",
            "Sign in to choose a patient and book.",
        ),
        "page.rules": ("预约须知", "Booking rules"),
        "page.rules_hint": ("放号、限号、退号规则", "Release, limits, cancelling"),
        "page.my_appointments": ("我的预约", "My appointments"),
        "page.my_appointments_hint": ("凭证、取消、改约", "Vouchers, cancel, change"),
        "page.patients": ("就诊人", "Patients"),
        "page.patients_hint": ("为家人预约", "Book for your family"),
        "page.demo_phone": ("演示手机短信", "Demo phone (text messages)"),
        "page.back_home": ("返回首页", "Back to the start"),
        "page.home_title": ("门诊预约挂号", "Book an outpatient visit"),
        "page.search_department": ("搜索科室", "Find a department"),
        "page.search_placeholder": ("科室名称或拼音首字母，如 xxgnk", "Name or pinyin initials"),
        "page.search": ("搜索", "Search"),
        "page.book": ("预约挂号", "Book a visit"),
        "page.book_hint": ("按科室、医生选择", "By department or doctor"),
        "page.waitlist": ("候补", "Waitlist"),
        "page.waitlist_hint": ("号满时排队等待", "Wait for a place"),
        "page.upcoming": ("即将就诊", "Upcoming"),
        "page.past": ("历史预约", "Past and cancelled"),
        "page.none_upcoming": ("暂无待就诊的预约。", "No upcoming visits."),
        "page.phone": ("手机号", "Mobile number"),
        "page.phone_hint": (
            "中国大陆 11 位手机号，我们会发送 6 位验证码。",
            "An 11-digit mainland China mobile number; we will text you a 6-digit code.",
        ),
        "page.send_code": ("获取验证码", "Send code"),
        "page.resend_code": ("重新获取验证码", "Send a new code"),
        "page.code": ("短信验证码", "Code from the text message"),
        "page.code_sent": (
            "验证码已发送至 {phone}，5 分钟内有效。",
            "Code sent to {phone}; valid for 5 minutes.",
        ),
        "page.demo_code_hint": (
            "演示环境不会真正发送短信，请在这里查看验证码：",
            "The demo sends no real text messages; read the code here:",
        ),
        "page.departments": ("选择科室", "Departments"),
        "page.other": ("其他", "Other"),
        "page.no_department": ("没有找到与“{q}”匹配的科室。", "No department matches “{q}”."),
        "page.place": ("地点", "Where"),
        "page.campus_at": ("{campus}（{address}）", "{campus} ({address})"),
        "page.ages": ("接诊年龄", "Ages seen"),
        "page.years": ("岁", "years"),
        "page.doctors": ("医生", "Doctors"),
        "page.specialty": ("擅长", "Specialty"),
        "page.schedule": ("出诊安排", "Clinic sessions"),
        "page.no_sessions": ("近期没有出诊安排。", "No clinic sessions in the coming days."),
        "page.extra_session": ("加诊", "Extra session"),
        "page.extra_places": ("含加号 {n} 个", "incl. {n} extra"),
        "page.extra_place": ("加号", "Extra place"),
        "page.stopped": ("停诊", "Stopped"),
        "page.opens_at": ("{at} 开放预约", "Opens at {at}"),
        "page.closed": ("已截止", "Closed"),
        "page.remaining": ("余 {n}", "{n} left"),
        "page.full": ("约满", "Full"),
        "page.when": ("时间", "When"),
        "page.level": ("号别", "Level"),
        "page.fee": ("挂号费", "Fee"),
        "page.free": ("免费", "Free"),
        "page.choose_slot": ("选择时段", "Choose a time"),
        "page.choose_patient": ("请选择就诊人", "Choose the patient"),
        "page.no_patients": ("还没有就诊人，请先添加。", "No patients yet; add one first."),
        "page.add_patient": ("添加就诊人", "Add a patient"),
        "page.next": ("下一步", "Next"),
        "page.session_stopped": (
            "该出诊已停诊。{reason}",
            "This session has been stopped. {reason}",
        ),
        "page.not_open_yet": (
            "尚未放号，将于 {at} 开放预约。",
            "Not open yet; booking opens at {at}.",
        ),
        "page.same_day_later": (
            "提前预约已截止，当日挂号将于 {at} 开放预约。",
            "Advance booking has closed; same-day registration opens at {at}.",
        ),
        "page.booking_closed_here": (
            "网上预约已截止，可到医院窗口或自助机挂号。",
            "Online booking has closed; please register at the hospital window or kiosk.",
        ),
        "page.sold_out_here": ("该出诊已约满。", "This session is fully booked."),
        "page.join_waitlist": ("加入候补", "Join the waitlist"),
        "page.waitlist_explain": (
            "加入候补不是预约。有人退号时，号源会按候补顺序留给您一段时间，请留意消息。",
            "Joining the waitlist is not a booking. When a place frees up it is held for "
            "the first person waiting for a short time; watch your messages.",
        ),
        "page.confirm": ("确认预约", "Confirm the booking"),
        "page.confirm_booking": ("确认预约", "Book"),
        "page.patient": ("就诊人", "Patient"),
        "page.slot": ("时段", "Time"),
        "page.any_slot": ("最早可用时段", "Earliest free time"),
        "page.cancel_by": ("取消截止", "Cancel by"),
        "page.pay_within": (
            "预约后请在 {minutes} 分钟内完成支付，否则号源将自动释放。",
            "Please pay within {minutes} minutes of booking, or the place is released.",
        ),
        "page.back": ("返回", "Back"),
        "page.alternatives": ("可选的其他号源", "Other places you can book"),
        "page.alt_slot": ("同一出诊的其他时段", "Another time in this session"),
        "page.alt_same_doctor": ("同一医生的其他出诊", "The same doctor, another day"),
        "page.alt_same_level": ("同科室同级别医生", "Same department and level"),
        "page.voucher": ("就诊凭证", "Visit voucher"),
        # An unpaid hold, or an appointment that ended without a visit, is no voucher.
        "page.held_place": ("号源已保留", "Place held"),
        "page.appointment": ("预约详情", "Appointment"),
        "page.qr_label": (
            "就诊二维码，到院后在自助机或分诊台扫码报到",
            "Voucher QR code for check-in",
        ),
        "page.short_code": ("短码（电话或窗口报到用）", "Short code (for phone or window)"),
        "page.voucher_hint": (
            "就诊当天到院后扫码报到，凭证当天有效。",
            "Scan this at the kiosk or triage desk on the day; it is valid that day only.",
        ),
        "page.awaiting_payment": (
            "号源已为您保留，请在 {at} 前完成支付。",
            "The place is held for you; please pay before {at}.",
        ),
        "page.pay": ("支付 {amount}", "Pay {amount}"),
        "page.sequence": ("就诊序号", "Queue number"),
        "page.number": ("{n} 号", "No. {n}"),
        "page.department": ("科室", "Department"),
        "page.doctor": ("医生", "Doctor"),
        "page.what_to_bring": ("就诊须知", "What to bring"),
        "page.what_to_bring_default": (
            "请携带就诊人身份证件和医保卡，提前 30 分钟到院报到。",
            "Bring the patient's identity document and medical insurance card, and arrive "
            "30 minutes early to check in.",
        ),
        "page.booked_ok": (
            "预约成功。确认短信已发送。",
            "Booked. A confirmation message is on its way.",
        ),
        "page.cancelled_ok": ("已取消，号源已释放。", "Cancelled; the place has been released."),
        "page.paid_ok": ("支付成功，预约已确认。", "Paid; the booking is confirmed."),
        "page.reschedule": ("改约", "Change"),
        "page.cancel": ("取消预约", "Cancel"),
        "page.cancel_title": ("确认取消预约？", "Cancel this visit?"),
        "page.cancel_explain": (
            "取消后号源会立即释放给其他患者。",
            "The place goes to someone else at once.",
        ),
        "page.keep": ("不取消", "Keep it"),
        "page.cancel_confirm": ("确认取消", "Yes, cancel"),
        "page.patients_limit": (
            "一个账号最多添加 {n} 位就诊人。",
            "An account holds up to {n} patients.",
        ),
        "page.real_name": ("姓名（与证件一致）", "Name (as on the document)"),
        "page.id_type": ("证件类型", "Document type"),
        "page.id_number": ("证件号码", "Document number"),
        "page.patient_phone": ("就诊人手机号", "Patient's mobile number"),
        "page.patient_phone_hint": (
            "不填则使用您的登录手机号接收通知。",
            "Leave empty to receive the messages on your own number.",
        ),
        "page.other_documents": ("护照或港澳台证件需填写", "For passports and permits"),
        "page.birth_date": ("出生日期", "Date of birth"),
        "page.sex": ("性别", "Sex"),
        "page.male": ("男", "Male"),
        "page.female": ("女", "Female"),
        "page.save": ("保存", "Save"),
        "page.check_fields": ("请检查标红的项目。", "Please check the fields marked below."),
        "page.field.required": ("此项必填。", "This is required."),
        "page.field.date_invalid": ("请输入有效日期。", "Enter a real date."),
        "page.field.id_type_invalid": ("请选择证件类型。", "Choose a document type."),
        "page.field.sex_invalid": ("请选择性别。", "Choose a sex."),
        "page.rules_release": ("放号与预约", "When you can book"),
        "page.rules_limits": ("预约限制", "Limits"),
        "page.rules_cancel": ("取消与爽约", "Cancelling and missed visits"),
        "rules.release": (
            "每天 {at} 放出第 {days} 天的号源。",
            "Each day at {at}, places open for the day {days} days ahead.",
        ),
        "rules.cutoff": (
            "提前预约在就诊前一天 {at} 截止。",
            "Advance booking closes at {at} the day before the visit.",
        ),
        "rules.same_day": (
            "当天号从 {at} 起可预约，至出诊结束前 {minutes} 分钟。",
            "Same-day places can be booked from {at} until {minutes} minutes before the "
            "session ends.",
        ),
        "rules.no_same_day": ("不提供当天网上预约。", "Same-day places are not booked online."),
        "rules.hold": (
            "需付费的号源为您保留 {minutes} 分钟，期间未支付将自动释放。",
            "A paid place is held for {minutes} minutes; unpaid, it is released.",
        ),
        "rules.limit_doctor_day": (
            "同一就诊人同一天同一医生最多 {n} 个号。",
            "A patient may book at most {n} per doctor per day.",
        ),
        "rules.limit_department_day": (
            "同一就诊人同一天同一科室最多 {n} 个号。",
            "At most {n} per department per day.",
        ),
        "rules.limit_day": ("同一就诊人每天最多 {n} 个号。", "At most {n} per day."),
        "rules.limit_week": ("7 天内最多预约 {n} 次。", "At most {n} bookings in 7 days."),
        "rules.limit_90": ("90 天内最多预约 {n} 次。", "At most {n} bookings in 90 days."),
        "rules.limit_active": (
            "同时有效的预约最多 {n} 个。",
            "At most {n} upcoming bookings at a time.",
        ),
        "rules.patients": (
            "一个账号最多添加 {n} 位就诊人。",
            "An account holds up to {n} patients.",
        ),
        "rules.cancel": (
            "最晚可在就诊前 {days} 天 {at} 前取消，取消后号源立即释放。",
            "Cancel by {at}, {days} day(s) before the visit; the place is released at once.",
        ),
        "rules.cancel_same_day": (
            "最晚可在就诊当天 {at} 前取消。",
            "Cancel by {at} on the day of the visit.",
        ),
        "rules.no_show": (
            "预约后既未取消也未在出诊结束后 {grace} 分钟内到院报到，记为爽约。{days} 天内爽约 "
            "{n} 次，暂停网上等自助渠道预约 {ban} 天{again}；暂停期间仍可到医院窗口现场挂号，"
            "也可在线申诉，由工作人员审核。",
            "A booking neither cancelled nor checked in by {grace} minutes after the clinic "
            "ends is a missed visit. {n} missed visits within {days} days suspend "
            "self-service booking for {ban} days{again}; registration at the hospital window "
            "stays open, and you can appeal online for staff to review.",
        ),
        "rules.no_show_again": (
            "，暂停后 {days} 天内再次达到则暂停 {ban} 天",
            "; reaching it again within {days} days of a suspension means {ban} days",
        ),
        "rules.waitlist": (
            "号满时可加入候补（每人最多 {n} 个）；有人退号时号源为候补者保留 {offer} 分钟；"
            "出诊前 {closes} 分钟候补结束。",
            "When a session is full you can join its waitlist (up to {n} at a time); a freed "
            "place is held for the next person for {offer} minutes; the waitlist closes "
            "{closes} minutes before the session.",
        ),
        "page.new": ("新", "New"),
        "page.open": ("查看", "Open"),
        "page.refresh": ("刷新", "Refresh"),
        "page.inbox_empty": ("暂无消息。", "No messages yet."),
        "page.demo_phone_explain": (
            "演示环境不发送真实短信：本应发到手机上的短信显示在这里（仅演示模式可见）。",
            "The demo sends no real text messages; the ones a phone would receive are shown "
            "here (demo mode only).",
        ),
        "page.demo_phone_empty": (
            "还没有短信。获取验证码后稍候刷新。",
            "No text messages yet. Refresh a moment after asking for a code.",
        ),
        "page.waitlist_position": ("候补第 {n} 位", "Number {n} in line"),
        "page.waitlist_offered": (
            "有号了！请在 {at} 前确认",
            "A place is yours if you take it before {at}",
        ),
        "page.waitlist_accept": ("确认预约", "Take the place"),
        "page.waitlist_decline": ("放弃", "Give it up"),
        "page.waitlist_leave": ("退出候补", "Leave the waitlist"),
        "page.waitlist_empty": ("没有候补记录。", "You are not waiting for any session."),
        "page.waitlist_done_joined": (
            "已加入候补。有号时会发消息通知您。",
            "You are on the waitlist; we will message you when a place frees up.",
        ),
        "page.waitlist_done_decline": (
            "已放弃，号源转给下一位。",
            "Given up; the next person gets it.",
        ),
        "page.waitlist_done_leave": ("已退出候补。", "You have left the waitlist."),
        "waitlist.waiting": ("候补中", "Waiting"),
        "waitlist.offered": ("待确认", "Offered"),
        "waitlist.accepted": ("已预约", "Booked"),
        "waitlist.declined": ("已放弃", "Given up"),
        "waitlist.lapsed": ("超时未确认", "Offer lapsed"),
        "waitlist.left": ("已退出", "Left"),
        "waitlist.closed": ("候补已结束", "Waitlist closed"),
        "waitlist.skipped": ("未能分配", "Passed over"),
        "page.reschedule_title": ("改约到其他时间", "Change to another time"),
        "page.reschedule_now": (
            "当前预约：{when}，就诊人 {patient}。",
            "Now booked: {when} for {patient}.",
        ),
        "page.reschedule_explain": (
            "新号源预约成功后才会取消原预约；若新号源已被约走，原预约保持不变。",
            "The old booking is only given up once the new place is yours; if the new place "
            "is gone, you keep the old one.",
        ),
        "page.reschedule_none": (
            "该科室近期没有可改约的号源。",
            "No other sessions of this department have places left.",
        ),
        "page.reschedule_confirm": ("确认改约", "Change the booking"),
        "page.pay_title": ("支付挂号费", "Pay the fee"),
        "page.pay_before": ("支付截止", "Pay before"),
        "page.nothing_to_pay": ("该预约无需支付。", "Nothing to pay for this booking."),
        "page.pay_at_window": (
            "本院尚未开通在线支付，请在支付截止前到收费窗口缴费。",
            "Online payment is not available at this hospital; please pay at a cashier "
            "window before the deadline.",
        ),
        "page.settings": ("消息设置", "Message settings"),
        "page.settings_explain": (
            "预约通知和就诊提醒会通过短信发到就诊人手机，并放入站内消息；填写邮箱后也会发送邮件。",
            "Notices and reminders go by text message to the patient's phone and into your "
            "messages here; add an email address to get them by email too.",
        ),
        "page.email": ("电子邮箱（可选）", "Email (optional)"),
        "page.message_language": ("消息语言", "Language of messages"),
        "page.saved": ("已保存。", "Saved."),
        "page.reminders": ("就诊提醒", "Reminders"),
        "page.reminders_hint": (
            "届时会通过短信和站内消息提醒您；取消或改约后提醒自动撤回。",
            "They come by text message and in your messages here; cancelling or changing "
            "the booking withdraws them.",
        ),
        "period.morning": ("上午", "Morning"),
        "period.afternoon": ("下午", "Afternoon"),
        "period.evening": ("夜间", "Evening"),
        "status.held": ("待支付", "Awaiting payment"),
        "status.booked": ("已预约", "Booked"),
        "status.cancelled": ("已取消", "Cancelled"),
        "status.expired": ("已过期", "Expired"),
        "status.checked_in": ("已报到", "Checked in"),
        "status.completed": ("已就诊", "Seen"),
        "status.no_show": ("爽约", "Missed"),
        "idtype.resident_id": ("居民身份证", "Resident ID card"),
        "idtype.passport": ("护照", "Passport"),
        "idtype.hk_macao_permit": ("港澳居民来往内地通行证", "Hong Kong/Macao permit"),
        "idtype.taiwan_permit": ("台湾居民来往大陆通行证", "Taiwan permit"),
        # announcements (公告)
        "notice.heading": ("医院公告", "Hospital notices"),
        "notice.all": ("医院公告", "Notices"),
        "notice.none": ("目前没有公告。", "There are no notices at the moment."),
        "notice.until": ("至 {at}", "until {at}"),
        "notice.kind.maintenance": ("系统维护", "Maintenance"),
        "notice.kind.clinic_delayed": ("门诊延迟", "Clinic delayed"),
        "notice.kind.campus_closed": ("院区停诊", "Closed"),
        "notice.kind.general": ("公告", "Notice"),
    }
)
