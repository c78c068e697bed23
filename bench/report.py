"""The benchmark's summaries: the table of one sitting (closed-loop rates as ratios to the
same server's trivial endpoint, CPU per request, the mixed peak and the release moment)
and the open-loop searches (maximum sustainable rates as ratios to their own trivial
capacity), as JSON-ready dicts and Markdown."""

from __future__ import annotations

import math
from typing import Any

GOAL_REFUSALS = 0.7
GOAL_BOOKINGS = 0.25
GOAL_P99_MS = 100.0

# The closed-loop figures and what each one's rate counts.
RATE_OF = {"trivial": "answers/s", "reads": "answers/s", "bookings": "successes/s"}
KIND_LABELS = {
    "session_list": "session lists",
    "slot_list": "slot lists",
    "booking_hot": "booking attempts, hot sessions",
    "booking": "booking attempts, other sessions",
    "cancellation": "cancellations",
}


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def table_rows(steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The sitting's figures from the closed-loop and fixed-rate runs (each a Step summary
    with `cpu_ms_per_request`), with ratios to the closed-loop trivial rate."""
    trivial = steps.get("trivial")
    base = trivial["achieved_rate"] if trivial else None
    rows: list[dict[str, Any]] = []
    for name in ("trivial", "reads", "bookings"):
        step = steps.get(name)
        if step is None:
            continue
        rate = step["success_rate"] if RATE_OF[name] == "successes/s" else step["achieved_rate"]
        rows.append(
            {
                "figure": name,
                "rate": rate,
                "rate_of": RATE_OF[name],
                "answers_per_s": step["achieved_rate"],
                "successes_per_s": step["success_rate"],
                "latency_ms": step["latency_ms"],
                "statuses": step["statuses"],
                "codes": step["codes"],
                "ratio_to_trivial": round(rate / base, 3) if base else None,
                "cpu_ms_per_request": step["cpu_ms_per_request"],
                "places": step.get("places"),
            }
        )
    return {"trivial_answers_per_s": base, "rows": rows}


def markdown_sitting(report: dict[str, Any]) -> str:
    steps: dict[str, dict[str, Any]] = report.get("sitting", {})
    if not steps:
        return ""
    config = report["config"]
    title = (
        f"### {report['database']}, `--workers {config['workers']}`"
        + (" with Redis" if config.get("redis_url") else "")
        + f", {config['clients']} closed-loop clients, {config['duration_s']:g} s windows"
    )
    lines = [title, ""]
    table = table_rows(steps)
    if table["rows"]:
        lines += [
            "| figure | rate | p50 ms | p99 ms | max ms | ratio to trivial "
            "| CPU ms/request: server · PostgreSQL · load generator | statuses |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for row in table["rows"]:
            cpu = row["cpu_ms_per_request"]
            latency = row["latency_ms"]
            extra = ""
            if row["figure"] == "bookings":
                extra = f" ({_fmt(row['answers_per_s'], 0)} answers/s)"
            lines.append(
                f"| {row['figure']} | {_fmt(row['rate'], 0)} {row['rate_of']}{extra} "
                f"| {_fmt(latency['p50'])} | {_fmt(latency['p99'])} | {_fmt(latency['max'])} "
                f"| {_fmt(row['ratio_to_trivial'], 3)} "
                f"| {_fmt(cpu.get('server'), 2)} · {_fmt(cpu.get('postgres'), 2)} · "
                f"{_fmt(cpu.get('load_generator'), 2)} "
                f"| {_statuses(row['statuses'], row['codes'])} |"
            )
        lines.append("")
    for name in ("mixed", "release_moment"):
        step = steps.get(name)
        if step is None:
            continue
        latency = step["latency_ms"]
        cpu = step["cpu_ms_per_request"]
        lines.append(
            f"**{name}** at {step['offered_rate']:,.0f}/s offered: answered "
            f"{_fmt(step['achieved_rate'], 0)}/s, p50 {_fmt(latency['p50'])} ms, "
            f"p99 {_fmt(latency['p99'])} ms, max {_fmt(latency['max'])} ms; CPU ms/request "
            f"server {_fmt(cpu.get('server'), 2)}, PostgreSQL {_fmt(cpu.get('postgres'), 2)}; "
            f"{_statuses(step['statuses'], step['codes'])}"
            + (f"; sent late: {step['late_sends']}" if step.get("late_sends") else "")
            + (f"; never sent: {step['unsent']}" if step.get("unsent") else "")
        )
        kinds = step.get("by_kind") or {}
        if kinds:
            lines += [
                "",
                "| request | count | p50 ms | p99 ms | max ms | answers |",
                "|---|---:|---:|---:|---:|---|",
            ]
            for kind, stats in kinds.items():
                lat = stats["latency_ms"]
                lines.append(
                    f"| {KIND_LABELS.get(kind, kind)} | {stats['requests']} | {_fmt(lat['p50'])} "
                    f"| {_fmt(lat['p99'])} | {_fmt(lat['max'])} "
                    f"| {_statuses(stats['statuses'], stats['codes'])} |"
                )
        hot = step.get("hot")
        if hot:
            lines.append("")
            lines.append(
                f"Hot sessions: {hot['places']} places, {hot['winners']} active bookings "
                f"after the run, {hot['acknowledged_201']} answered 201, first sold_out "
                f"{_fmt(hot.get('first_sold_out_s'))} s into the window — "
                + ("exact" if hot["exact"] else "NOT EXACT")
            )
        checks = step.get("verification") or {}
        lines.append(
            f"Overbooking checks: {'passed' if checks.get('ok') else 'FAILED'}"
            + (
                f" (new active {checks.get('new_active')}, acknowledged "
                f"{checks.get('acknowledged')})"
                if "new_active" in checks
                else ""
            )
        )
        lines.append("")
    problems = report.get("server_problems") or []
    if problems:
        lines.append(f"- server problems seen: {len(problems)} (see JSON `server_problems`)")
    return "\n".join(lines) + "\n"


def _statuses(statuses: dict[str, int], codes: dict[str, int]) -> str:
    """2xx counts, then each refusal by its problem code, then requests with no answer."""
    parts = [f"{k}: {v}" for k, v in sorted(statuses.items()) if not k.startswith(("4", "5", "0"))]
    parts += [f"{k}: {v}" for k, v in sorted(codes.items())]
    if "0" in statuses:
        parts.append(f"no answer: {statuses['0']}")
    return ", ".join(parts) or "no answers"


# --- the open-loop searches --------------------------------------------------------------


def summarise_searches(
    searches: dict[str, Any], peak: Any | None, moment: Any | None, peak_rate: float
) -> dict[str, Any]:
    """Rows and goals of the open-loop searches (Search and Step objects of run.py)."""
    trivial = searches["open_trivial"].best if "open_trivial" in searches else None
    capacity = trivial.result.achieved_rate if trivial else float("nan")

    def row(
        label: str, step: Any | None, *, basis_of: str = "answers/s", at_least: bool = False
    ) -> dict[str, Any]:
        if step is None:
            return {"scenario": label, "sustainable": False}
        if at_least:
            label += " (highest rate tried; the limit is higher)"
        r = step.result
        basis = {
            "answers/s": r.achieved_rate,
            "successful bookings/s": r.success_rate,
            "refusals/s": r.achieved_rate - r.success_rate,
        }[basis_of]
        return {
            "scenario": label,
            "offered": step.rate,
            "achieved": round(r.achieved_rate, 1),
            "success": round(r.success_rate, 1),
            "p50_ms": round(r.percentile(50), 2),
            "p99_ms": round(r.percentile(99), 2),
            "ratio": round(basis / capacity, 3),
            "ratio_of": basis_of,
            "sustainable": step.sustainable,
            "codes": dict(r.codes),
        }

    rows = []
    goals = []
    if "open_trivial" in searches:
        rows.append(
            row(
                "trivial (max sustainable)",
                trivial,
                at_least=searches["open_trivial"].ceiling_not_found,
            )
        )
    if "availability" in searches:
        rows.append(
            row(
                "availability (max sustainable)",
                searches["availability"].best,
                at_least=searches["availability"].ceiling_not_found,
            )
        )
    if peak is not None:
        rows.append(row(f"release_peak @ {peak_rate:.0f}/s", peak, basis_of="refusals/s"))
        peak_p99 = peak.result.percentile(99)
        goals.append(
            {
                "goal": f"p99 <= {GOAL_P99_MS:.0f} ms at {peak_rate:.0f} attempts/s",
                "measured": round(peak_p99, 2),
                "met": peak_p99 <= GOAL_P99_MS,
            }
        )
    if moment is not None:
        rows.append(row(f"release moment @ {peak_rate:.0f}/s (window opens at release)", moment))
        moment_p99 = moment.result.percentile(99)
        goals.append(
            {
                "goal": f"(stricter reading) p99 <= {GOAL_P99_MS:.0f} ms at {peak_rate:.0f} "
                "attempts/s with the moment of release inside the window",
                "measured": round(moment_p99, 2),
                "met": moment_p99 <= GOAL_P99_MS,
            }
        )
    if "release_peak" in searches:
        release = searches["release_peak"].best
        rows.append(
            row(
                "release_peak (max sustainable)",
                release,
                basis_of="refusals/s",
                at_least=searches["release_peak"].ceiling_not_found,
            )
        )
        refusal_ratio = (
            (release.result.achieved_rate - release.result.success_rate) / capacity
            if release
            else 0.0
        )
        goals.insert(
            0,
            {
                "goal": f"sold-out refusals >= {GOAL_REFUSALS}x trivial",
                "measured": round(refusal_ratio, 3),
                "met": refusal_ratio >= GOAL_REFUSALS,
            },
        )
    if "spread" in searches:
        spread = searches["spread"].best_success
        rows.append(
            row(
                "spread (max sustainable)",
                spread,
                basis_of="successful bookings/s",
                at_least=searches["spread"].ceiling_not_found,
            )
        )
        booking_ratio = spread.result.success_rate / capacity if spread else 0.0
        goals.append(
            {
                "goal": f"successful bookings >= {GOAL_BOOKINGS}x trivial",
                "measured": round(booking_ratio, 3),
                "met": booking_ratio >= GOAL_BOOKINGS,
            }
        )
    return {"trivial_capacity": round(capacity, 1), "rows": rows, "goals": goals}


def markdown_searches(report: dict[str, Any]) -> str:
    summary = report.get("summary")
    if not summary or not summary.get("rows"):
        return ""
    lines = [
        f"### {report['database']}, open-loop searches "
        f"(trivial capacity C = {_fmt(summary['trivial_capacity'], 0)}/s)",
        "",
        "| scenario | offered/s | achieved/s | success/s | p50 ms | p99 ms | ratio to C |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        if "offered" not in row:
            lines.append(f"| {row['scenario']} | no sustainable rate found | | | | | |")
            continue
        flag = "" if row["sustainable"] else " (not sustainable)"
        lines.append(
            f"| {row['scenario']}{flag} | {row['offered']:.0f} | {row['achieved']:.0f} | "
            f"{row['success']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{_fmt(row['ratio'], 2)} ({row['ratio_of']}) |"
        )
    lines.append("")
    for goal in summary["goals"]:
        lines.append(
            f"- {goal['goal']}: measured {goal['measured']} — {'MET' if goal['met'] else 'NOT MET'}"
        )
    return "\n".join(lines) + "\n"


def markdown(report: dict[str, Any]) -> str:
    parts = [markdown_sitting(report), markdown_searches(report)]
    text = "\n".join(p for p in parts if p)
    if not text:
        return f"### {report['database']}\n\n(no summary: the run did not finish)\n"
    return text
