"""The guidance rules, without a database: negation, the past, age and sex, red flags,
English, and reading the hospital's department names."""

from __future__ import annotations

import pytest

from yuyue.guidance import knowledge, rules, segment
from yuyue.guidance.rules import Action, Status

KNOWLEDGE = knowledge.default()
SEGMENTER = segment.for_knowledge(KNOWLEDGE)


def analyse(text: str, *, age: int | None = None, sex: str | None = None) -> rules.Analysis:
    return rules.analyse(KNOWLEDGE, SEGMENTER, text, age=age, sex=sex)


def statuses(text: str) -> dict[str, Status]:
    return {f.symptom_id: f.status for f in rules.find_symptoms(KNOWLEDGE, SEGMENTER, text)}


def top(text: str, **patient: object) -> list[str]:
    return [k.kind for k in analyse(text, **patient).kinds]  # type: ignore[arg-type]


class TestFindingSymptoms:
    @pytest.mark.parametrize(
        ("text", "symptom"),
        [
            ("头疼", "headache"),
            ("脑袋疼了两天", "headache"),
            ("头有点疼", "headache"),  # a gapped word: 头*疼
            ("嗓子好疼", "sore_throat"),
            ("拉肚子", "diarrhoea"),
            ("I have a headache", "headache"),
            ("Chest pain since this morning", "chest_pain"),
            ("ＨＥＡＤＡＣＨＥ", "headache"),  # full-width letters
        ],
    )
    def test_colloquial_and_english_words_are_found(self, text: str, symptom: str) -> None:
        assert statuses(text).get(symptom) is Status.PRESENT

    @pytest.mark.parametrize(
        ("text", "symptom"),
        [
            ("不发烧", "fever"),
            ("没有胸痛", "chest_pain"),
            ("头不疼", "headache"),
            ("肚子一点都不疼", "abdominal_pain"),  # the negation inside a gapped word
            ("没有发烧、咳嗽", "cough"),  # one negation over a list
            ("no chest pain", "chest_pain"),
            ("I don't have a fever", "fever"),
            ("但没有想过自杀", "suicidal"),
        ],
    )
    def test_negated_symptoms_do_not_count(self, text: str, symptom: str) -> None:
        assert statuses(text).get(symptom, Status.NEGATED) is Status.NEGATED
        assert symptom not in {
            f.symptom_id for f in analyse(text).findings if f.status != "negated"
        }

    def test_a_negation_stops_at_but(self) -> None:
        found = statuses("不发烧，但是咳嗽")
        assert found["fever"] is Status.NEGATED
        assert found["cough"] is Status.PRESENT
        assert statuses("不发烧就是咳嗽")["cough"] is Status.PRESENT

    @pytest.mark.parametrize(
        ("text", "symptom"),
        [
            ("以前有过胸痛", "chest_pain"),
            ("胸痛，现在没有了", "chest_pain"),
            ("去年抽搐过一次", "convulsion"),
            ("中风后半边身子不灵活，想做康复", "one_sided_weakness"),
        ],
    )
    def test_past_symptoms_are_past(self, text: str, symptom: str) -> None:
        assert statuses(text)[symptom] is Status.PAST

    def test_sudden_makes_a_symptom_current_again(self) -> None:
        assert statuses("之前还好，突然胸痛")["chest_pain"] is Status.PRESENT

    def test_a_question_about_what_might_happen_is_hypothetical(self) -> None:
        assert statuses("如果出现胸痛怎么办")["chest_pain"] is Status.HYPOTHETICAL

    def test_a_mention_now_wins_over_a_mention_in_the_past(self) -> None:
        assert statuses("以前有过头疼，今天头疼得厉害")["headache"] is Status.PRESENT

    def test_words_are_reported_as_typed(self) -> None:
        [finding] = [f for f in rules.find_symptoms(KNOWLEDGE, SEGMENTER, "脑袋疼") if f]
        assert finding.words == ("脑袋疼",)


class TestRedFlags:
    @pytest.mark.parametrize(
        ("text", "flag", "action"),
        [
            ("胸口疼还出冷汗", "chest_pain_sweating", Action.CALL_120),
            ("胸痛，疼到左胳膊", "chest_pain_sweating", Action.CALL_120),
            ("我爸突然说话不清楚嘴也歪了", "stroke_face", Action.CALL_120),
            ("一边手脚没力气", "stroke_weakness", Action.CALL_120),
            ("孩子发烧39度还抽搐了", "convulsion", Action.CALL_120),
            ("喘不上气", "breathing", Action.CALL_120),
            ("晕倒了叫不醒", "unconscious", Action.CALL_120),
            ("血流不止", "heavy_bleeding", Action.CALL_120),
            ("怀孕8个月，肚子疼得厉害", "pregnancy_abdominal_pain", Action.EMERGENCY_DEPARTMENT),
            ("不想活了", "suicidal", Action.CRISIS_LINE),
            ("I want to kill myself", "suicidal", Action.CRISIS_LINE),
        ],
    )
    def test_red_flags_are_emergencies(self, text: str, flag: str, action: Action) -> None:
        emergency = analyse(text).emergency
        assert emergency is not None
        assert (emergency.flag_id, emergency.action) == (flag, action)
        assert emergency.kinds[0] == "emergency"
        assert analyse(text).kinds == ()

    @pytest.mark.parametrize(
        "text",
        [
            "以前有过胸痛，现在没有了，想复查一下",
            "胸痛，没有出汗",  # chest pain alone is cardiology, not 120
            "出汗多，不胸痛",
            "头晕，没有晕倒过",
            "腿抽筋",  # cramp is not a seizure
            "如果出现胸痛出汗应该挂什么科",
            "孩子以前有过高热惊厥，这次只是流鼻涕",
            "有时候心情不好，但没有想过自杀",
            "流鼻血，已经止住了",
        ],
    )
    def test_mild_negated_or_past_alarming_words_are_not_emergencies(self, text: str) -> None:
        assert analyse(text).emergency is None

    def test_an_adult_seizure_is_not_sent_to_paediatrics(self) -> None:
        emergency = analyse("抽搐了", age=40).emergency
        assert emergency is not None
        assert emergency.kinds == ("emergency",)


class TestAgeAndSex:
    def test_a_child_goes_to_paediatrics_first(self) -> None:
        assert top("咳嗽发烧", age=4)[0] == "paediatrics"
        assert top("咳嗽发烧", age=40)[0] != "paediatrics"

    def test_a_child_named_in_the_text_goes_to_paediatrics_first(self) -> None:
        assert top("宝宝咳嗽")[0] == "paediatrics"
        assert top("3岁宝宝流鼻涕")[0] == "paediatrics"

    def test_a_childs_teeth_still_go_to_the_dentist_first(self) -> None:
        kinds = top("牙疼", age=8)
        assert kinds[:2] == ["stomatology", "paediatrics"]

    def test_paediatrics_is_never_suggested_for_an_adult(self) -> None:
        assert "paediatrics" not in top("个子矮，不爱吃饭", age=30)

    def test_womens_departments_only_for_women(self) -> None:
        assert top("月经不调", sex="F")[0] == "gynaecology"
        assert "gynaecology" not in top("月经不调", sex="M")
        assert "obstetrics" not in top("怀孕了想产检", sex="M")

    def test_prostate_only_for_men(self) -> None:
        assert top("前列腺增生", sex="M")[0] == "urology"
        assert "andrology" not in top("前列腺增生", sex="F")
        assert top("前列腺增生", sex="F") == ["general_internal"]  # nothing left: start here

    def test_older_patients_have_dizziness_checked_by_cardiology_too(self) -> None:
        young = {k.kind: k.score for k in analyse("头晕", age=30).kinds}
        old = {k.kind: k.score for k in analyse("头晕", age=70).kinds}
        assert old["cardiology"] > young["cardiology"]
        assert "geriatrics" in old and "geriatrics" not in young

    @pytest.mark.parametrize(
        ("text", "age"),
        [
            ("我妈70岁了", 70),
            ("七十多岁的老人", 70),
            ("三岁宝宝", 3),
            ("8个月大的宝宝", 0),
            ("my 5 year old son", 5),
            ("孕28周", None),
            ("发烧39度", None),
        ],
    )
    def test_an_age_in_the_text(self, text: str, age: int | None) -> None:
        assert rules.age_in_text(text) == age


class TestRanking:
    def test_departments_come_in_order_with_the_words_as_reason(self) -> None:
        [first, *_] = analyse("最近老是头疼").kinds
        assert first.kind == "neurology"
        assert first.words == ("头疼",)
        assert first.why is not None and "神经" in first.why.zh

    def test_nothing_recognised_starts_at_the_fallback(self) -> None:
        result = analyse("我也说不清楚")
        assert not result.recognised
        assert [(k.kind, k.why) for k in result.kinds] == [("general_internal", None)]

    def test_at_most_five_kinds(self) -> None:
        assert len(analyse("头疼咳嗽肚子疼牙疼腰疼眼睛红皮疹").kinds) == rules.MAX_KINDS


class TestDepartments:
    @pytest.mark.parametrize(
        ("name", "name_en", "kind"),
        [
            ("心血管内科", "", "cardiology"),
            ("心内科", "", "cardiology"),
            ("内科", "", "general_internal"),
            ("甲状腺乳腺外科", "", "breast_thyroid_surgery"),
            ("外科", "", "general_surgery"),
            ("肛肠外科", "", "anorectal"),
            ("儿科", "", "paediatrics"),
            ("国际部", "Cardiology", "cardiology"),
            ("体检中心", "Health Check", None),
        ],
    )
    def test_a_hospital_department_is_a_kind_by_its_name(
        self, name: str, name_en: str, kind: str | None
    ) -> None:
        assert rules.kind_of_department(KNOWLEDGE, name=name, name_en=name_en) == kind

    @pytest.mark.parametrize(
        ("min_age", "max_age", "sex_rule", "age", "sex", "accepted"),
        [
            (None, 14, None, 14, None, True),
            (None, 14, None, 15, None, False),
            (18, None, "M", 17, "M", False),
            (18, None, "M", 30, "F", False),
            (18, None, "M", 30, "M", True),
            (None, None, "F", None, None, True),  # unknown patient: not refused
        ],
    )
    def test_a_departments_own_age_and_sex_rule(
        self,
        min_age: int | None,
        max_age: int | None,
        sex_rule: str | None,
        age: int | None,
        sex: str | None,
        accepted: bool,
    ) -> None:
        assert (
            rules.accepts(
                min_age=min_age, max_age=max_age, sex_restriction=sex_rule, age=age, sex=sex
            )
            is accepted
        )

    def test_department_names_the_patient_wrote(self) -> None:
        SEGMENTER.add_words(["心血管内科", "外科"])
        names = ["心血管内科", "外科"]
        assert rules.names_mentioned(SEGMENTER, "想挂心血管内科", names) == ["心血管内科"]
        assert rules.names_mentioned(SEGMENTER, "不想看外科", names) == []
