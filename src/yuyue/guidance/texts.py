"""Every sentence guidance shows, in zh-CN and English."""

from __future__ import annotations

from yuyue.kit import i18n

i18n.register(
    {
        "guidance.reason": ("您提到“{words}”：{why}", "You mentioned “{words}”: {why}"),
        "guidance.reason_named": ("您提到了{name}", "You mentioned {name}"),
        "guidance.reason_start_here": (
            "没有识别出具体症状，可以先看{kind}，由医生进一步判断",
            "No particular symptom was recognised; {kind} is a good place to start",
        ),
        "guidance.advice": (
            "以下科室按可能性排序，仅供参考，不能代替医生的诊断。症状突然加重请立即拨打 120。",
            "The departments are in order of likelihood. This is a guide, not a diagnosis; "
            "if things suddenly get worse, call 120.",
        ),
        "guidance.advice_unrecognised": (
            "没有从描述中识别出具体症状。请写明哪里不舒服、多久了，例如“头疼三天了”。",
            "No particular symptom was recognised. Say where it hurts and for how long, "
            "for example “headache for three days”.",
        ),
        "guidance.advice_no_department": (
            "本院暂无适合的科室，请咨询导诊台。",
            "This hospital has no suitable department; please ask at the help desk.",
        ),
        "title.too_many_requests": ("请求过于频繁", "Too many requests"),
        "error.too_many_requests": (
            "请求过于频繁，请 {seconds} 秒后再试。",
            "Too many requests; please try again in {seconds} seconds.",
        ),
        # The page.
        "page.guidance_entry": ("不知道挂哪个科？智能导诊", "Not sure which department? Ask us"),
        "page.guidance_entry_hint": (
            "描述症状，推荐科室",
            "Describe the symptoms, get a department",
        ),
        "page.guidance_title": ("智能导诊", "Which department?"),
        "page.guidance_intro": (
            "用自己的话说说哪里不舒服、多久了，我们推荐合适的科室。",
            "Tell us in your own words what is wrong and for how long; we suggest where to go.",
        ),
        "page.guidance_text": ("症状描述", "Symptoms"),
        "page.guidance_placeholder": (
            "例如：头疼三天了，晚上睡不好",
            "e.g. headache for three days, cannot sleep",
        ),
        "page.guidance_patient": ("就诊人", "Patient"),
        "page.guidance_anyone": ("不选择（不按年龄性别推荐）", "Nobody in particular"),
        "page.guidance_age": ("年龄（选填）", "Age (optional)"),
        "page.guidance_sex": ("性别（选填）", "Sex (optional)"),
        "page.guidance_sex_unknown": ("不填", "Not given"),
        "page.guidance_submit": ("推荐科室", "Suggest departments"),
        "page.guidance_results": ("推荐科室", "Suggested departments"),
        "page.guidance_book": ("去挂号", "Book"),
        "page.guidance_emergency": ("请立即急救", "Get emergency help now"),
        "page.guidance_call_120": ("拨打 120", "Call 120"),
        "page.guidance_crisis_line": ("心理援助热线 400-161-9995", "Crisis line 400-161-9995"),
        "page.guidance_go_to": ("急诊科位置", "Where the emergency department is"),
        "page.guidance_disclaimer": (
            "智能导诊只根据您的描述给出建议，不能代替医生的诊断。",
            "Guidance only follows what you wrote; it does not replace a doctor.",
        ),
        "page.guidance_search_hint": (
            "按您描述的症状推荐：",
            "Suggested for the symptoms you typed:",
        ),
    }
)
