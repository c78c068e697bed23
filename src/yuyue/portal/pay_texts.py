"""The sentences of paying and refunds on the patient pages, in zh-CN and English."""

from __future__ import annotations

from yuyue.kit import i18n

i18n.register(
    {
        "provider.wechatpay": ("微信支付", "WeChat Pay"),
        "provider.alipay": ("支付宝", "Alipay"),
        "provider.insurance": ("医保支付", "Medical insurance"),
        "provider.window": ("窗口缴费", "Paid at the window"),
        "pay.with.wechatpay": ("微信支付", "Pay with WeChat Pay"),
        "pay.with.alipay": ("支付宝支付", "Pay with Alipay"),
        "pay.deadline": (
            "请在 {at} 前完成支付（还剩 {n} 分钟），逾期号源自动释放。",
            "Please pay before {at} ({n} min left), or the place is released.",
        ),
        "pay.choose": ("选择支付方式", "Choose how to pay"),
        "pay.scan_title": ("微信扫码支付", "Scan to pay with WeChat"),
        "pay.scan": (
            "请使用微信扫一扫，扫描二维码完成支付。",
            "Use WeChat to scan this code and pay.",
        ),
        "pay.scan_label": ("微信支付二维码", "WeChat Pay QR code"),
        "pay.done_check": ("我已完成支付", "I have paid"),
        "pay.other_way": ("换一种支付方式", "Pay another way"),
        "pay.result_title": ("支付结果", "Payment result"),
        "pay.confirming": ("支付结果确认中", "Confirming your payment"),
        "pay.confirming_hint": (
            "正在向支付机构确认，页面会自动刷新。如已付款，请勿重复支付。",
            "We are checking with the payment provider; this page refreshes by itself. "
            "If you have paid, please do not pay again.",
        ),
        "pay.confirming_stopped": (
            "暂未收到支付结果。如已付款，稍后查看预约即可；如未付款，可重新支付。",
            "No word from the provider yet. If you have paid, look at the appointment again "
            "later; if not, you can pay now.",
        ),
        "pay.view_appointment": ("查看预约", "View the appointment"),
        "pay.retry": ("去支付", "Go to payment"),
        "pay.late": (
            "您的付款到账时，号源保留时间已过且号源已被他人预约，挂号费 {amount} 将原路退回。",
            "Your payment arrived after the hold had ended and the place was taken; the fee "
            "of {amount} is refunded the way it was paid.",
        ),
        "pay.released": (
            "号源保留时间已过，号源已释放，未产生扣款。",
            "The hold has ended and the place was released; nothing was charged.",
        ),
        "pay.book_again": ("重新预约", "Book again"),
        "pay.section": ("缴费信息", "Payment"),
        "pay.amount": ("挂号费", "Fee"),
        "pay.paid_with": ("支付方式", "Paid with"),
        "pay.paid_at": ("支付时间", "Paid at"),
        "pay.refund": ("退款", "Refund"),
        "pay.paid_short": ("已付 {amount} · {provider}", "Paid {amount} · {provider}"),
        "refund.pending": ("退款中", "Refund under way"),
        "refund.refunded": ("已退款", "Refunded"),
        "refund.failed": ("退款失败，请到窗口办理", "Refund failed: please come to the window"),
        "refund.at_window": ("请到窗口退费", "Refund at the window"),
        "refund.pending_hint": (
            "挂号费正在原路退回，到账时间以支付渠道为准。",
            "The fee is on its way back to where it was paid from; how soon it arrives "
            "depends on the provider.",
        ),
        "refund.refunded_hint": (
            "挂号费已原路退回。",
            "The fee has been refunded to where it was paid from.",
        ),
        "refund.failed_hint": (
            "挂号费未能原路退回，请携带身份证件到医院挂号收费窗口办理退费。",
            "The fee could not be refunded online: please bring your ID to the "
            "registration window.",
        ),
        "refund.at_window_hint": (
            "该笔费用为线下支付或已打印发票，请携带发票或收据到挂号收费窗口退费。",
            "The fee was paid at the hospital or has a printed invoice: please bring the "
            "invoice or receipt to the registration window to be refunded.",
        ),
        "cancel.refund_online": (
            "取消后挂号费 {amount} 将原路退回{provider}。",
            "If you cancel, the fee of {amount} goes back to your {provider} account.",
        ),
        "cancel.refund_window": (
            "取消后挂号费 {amount} 需持发票或收据到挂号收费窗口退还。",
            "If you cancel, the fee of {amount} is refunded at the registration window: "
            "bring the invoice or receipt.",
        ),
        "cancel.unpaid": (
            "该预约尚未支付，取消不涉及退款。",
            "Nothing has been paid for this booking, so there is nothing to refund.",
        ),
        "reschedule.carried": (
            "已付挂号费转入新预约，无需再次支付",
            "The fee you paid moves to the new booking",
        ),
        "reschedule.refunded": (
            "原挂号费将原路退回，新号需另付 {amount}",
            "The fee you paid is refunded; the new place costs {amount}",
        ),
        "reschedule.refunded_free": (
            "原挂号费将原路退回",
            "The fee you paid is refunded",
        ),
        "reschedule.done_carried": (
            "改约成功，已付挂号费已转入新预约。",
            "Changed; the fee you paid now covers the new booking.",
        ),
        "reschedule.done_refunded": (
            "改约成功，原挂号费将原路退回。",
            "Changed; the fee you paid for the old booking is being refunded.",
        ),
    }
)
