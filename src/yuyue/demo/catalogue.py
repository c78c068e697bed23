"""Reference data for the demo hospital: a made-up 三级甲等综合医院 with two campuses.

Everything here is plain, immutable data (frozen dataclasses and tuples); the demo seeder
turns it into database rows. Names of people are invented; any resemblance to a real doctor
or patient is accidental. Resident ID numbers are syntactically valid (GB 11643 check
character) but belong to nobody.

Conventions
-----------
* Weekdays are ``0`` (Monday) .. ``6`` (Sunday), as :meth:`datetime.date.weekday`.
* Periods are ``"morning"``, ``"afternoon"`` and ``"evening"``; see :data:`PERIOD_HOURS`.
* Fees are integers in fen (1 元 = 100 分).
* Age limits are in full years (周岁) at the visit date and are inclusive at both ends:
  ``min_age_years`` is the youngest allowed age, ``max_age_years`` the last allowed age.
  儿科 has ``max_age_years=14``: a child may be seen up to the day before turning 15.
* ``sex`` restrictions use ``"F"``/``"M"``, the same letters as the patients' sex.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "AFTERNOON",
    "CAMPUSES",
    "CATEGORIES",
    "DEMO_PATIENTS",
    "DEPARTMENTS",
    "DEPARTMENT_SESSIONS",
    "DOCTORS",
    "EVENING",
    "HOSPITAL",
    "LEVELS",
    "MORNING",
    "PERIOD_HOURS",
    "STAFF",
    "TITLES",
    "TITLE_LEVELS",
    "Campus",
    "Category",
    "Clinic",
    "DemoPatient",
    "Department",
    "DepartmentSession",
    "Doctor",
    "Hospital",
    "Level",
    "Period",
    "Relation",
    "Sex",
    "StaffAccount",
    "Title",
]

Period = Literal["morning", "afternoon", "evening"]
Sex = Literal["M", "F"]
Relation = Literal["self", "parent", "child", "spouse", "other"]

#: One weekly half-day clinic: ``(weekday 0=Monday..6=Sunday, period)``.
Clinic = tuple[int, Period]

MORNING: Final[Period] = "morning"
AFTERNOON: Final[Period] = "afternoon"
EVENING: Final[Period] = "evening"

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

#: Opening hours of each period, local time of :data:`HOSPITAL` (start, end).
PERIOD_HOURS: Final = MappingProxyType[Period, tuple[time, time]](
    {
        MORNING: (time(8, 0), time(12, 0)),
        AFTERNOON: (time(13, 30), time(17, 30)),
        EVENING: (time(18, 0), time(21, 0)),
    }
)


# --------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hospital:
    code: str
    name_zh: str
    name_en: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Campus:
    code: str
    name_zh: str
    name_en: str
    address_zh: str
    address_en: str


@dataclass(frozen=True, slots=True)
class Level:
    """A registration level (号别) and its fee (医事服务费/挂号费) in fen."""

    code: str
    name_zh: str
    name_en: str
    fee_fen: int


@dataclass(frozen=True, slots=True)
class Title:
    """A professional title (职称) of a doctor."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Category:
    """A group of departments (科室分组) used to lay out the department list."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name_zh: str
    name_en: str
    category_code: str
    campus_code: str
    location_zh: str
    location_en: str
    #: Lower-case pinyin initials of ``name_zh`` for quick search (心血管内科 → "xxgnk").
    pinyin: str
    description_zh: str
    description_en: str
    #: What to bring / how to prepare (就诊须知).
    bring_zh: str
    bring_en: str
    #: Youngest allowed age in full years, inclusive; ``None`` means no lower limit.
    min_age_years: int | None = None
    #: Last allowed age in full years, inclusive; ``None`` means no upper limit.
    max_age_years: int | None = None
    #: Only patients of this sex may book; ``None`` means anyone.
    sex: Sex | None = None
    #: True when the department also runs sessions without a named doctor (普通号/科室号);
    #: those sessions are listed in :data:`DEPARTMENT_SESSIONS`.
    has_department_sessions: bool = False


@dataclass(frozen=True, slots=True)
class Doctor:
    code: str
    name_zh: str
    #: Pinyin, given name after family name ("Wang Jianguo").
    name_en: str
    department_code: str
    title_code: str
    level_code: str
    sex: Sex
    #: 擅长 — what the doctor is known for.
    specialty_zh: str
    specialty_en: str
    #: Bookable patients per half-day clinic.
    capacity: int
    #: Weekly half-days; empty for doctors who only staff department sessions (急诊).
    timetable: tuple[Clinic, ...]


@dataclass(frozen=True, slots=True)
class DepartmentSession:
    """A weekly half-day of a department without a named doctor."""

    department_code: str
    weekday: int
    period: Period
    capacity: int
    level_code: str = "general"


@dataclass(frozen=True, slots=True)
class StaffAccount:
    username: str
    display_name: str
    roles: tuple[str, ...]
    #: Demo password; printed by the demo on start. Real deployments create their own users.
    password: str
    #: For a doctor login: the :class:`Doctor` it belongs to.
    doctor_code: str | None = None
    #: A second factor already enrolled with this TOTP secret (base32), printed by the demo
    #: so a new user can add it to an authenticator app; signing in then needs its code.
    totp_secret: str | None = None


@dataclass(frozen=True, slots=True)
class DemoPatient:
    """A real-name patient (就诊人) held by a patient account identified by a phone number."""

    code: str
    name_zh: str
    sex: Sex
    birth_date: date
    #: 18-character resident ID (GB 11643), with a valid check character.
    id_number: str
    #: The patient's own contact phone.
    phone: str
    #: Phone number of the patient account (登录手机号) that holds this patient.
    account_phone: str
    #: Relation of the patient to the account holder.
    relation: Relation


# --------------------------------------------------------------------------------------
# Hospital, campuses, levels, titles
# --------------------------------------------------------------------------------------

HOSPITAL: Final = Hospital(
    code="demo",
    name_zh="示范市第一人民医院",
    name_en="Demo City First People's Hospital",
    timezone="Asia/Shanghai",
)

CAMPUSES: Final = (
    Campus(
        code="main",
        name_zh="本部",
        name_en="Main Campus",
        address_zh="示范市中山区人民路88号",
        address_en="88 Renmin Road, Zhongshan District, Demo City",
    ),
    Campus(
        code="east",
        name_zh="东院",
        name_en="East Campus",
        address_zh="示范市高新区东湖大道1200号",
        address_en="1200 Donghu Avenue, Hi-Tech District, Demo City",
    ),
)

# Fees follow Beijing's 医事服务费 since the 2017 医药分开 reform (still current in 2024):
# 普通门诊 50 元, 副主任医师 60 元, 主任医师 80 元, 知名专家 100 元; 特需 is priced by the
# hospital, typically 300 元 and up. The demo makes 普通门诊 free (0) so that a booking is
# confirmed at once without a payment step; every other level goes through payment.
LEVELS: Final = (
    Level(code="general", name_zh="普通门诊", name_en="General clinic", fee_fen=0),
    Level(
        code="associate", name_zh="副主任医师", name_en="Associate chief physician", fee_fen=6000
    ),
    Level(code="chief", name_zh="主任医师", name_en="Chief physician", fee_fen=8000),
    Level(code="expert", name_zh="知名专家", name_en="Renowned expert", fee_fen=10000),
    Level(code="special", name_zh="特需门诊", name_en="VIP clinic", fee_fen=30000),
)

TITLES: Final = (
    Title(code="chief_physician", name_zh="主任医师", name_en="Chief physician"),
    Title(
        code="associate_chief_physician",
        name_zh="副主任医师",
        name_en="Associate chief physician",
    ),
    Title(code="attending_physician", name_zh="主治医师", name_en="Attending physician"),
    Title(code="resident", name_zh="住院医师", name_en="Resident physician"),
)

#: Levels a doctor of each title may hold.
TITLE_LEVELS: Final = MappingProxyType[str, tuple[str, ...]](
    {
        "chief_physician": ("chief", "expert", "special"),
        "associate_chief_physician": ("associate",),
        "attending_physician": ("general",),
        "resident": ("general",),
    }
)

CATEGORIES: Final = (
    Category(code="internal", name_zh="内科系统", name_en="Internal medicine"),
    Category(code="surgical", name_zh="外科系统", name_en="Surgery"),
    Category(code="women_children", name_zh="妇儿", name_en="Women and children"),
    Category(code="eye_ent_dental", name_zh="五官", name_en="Eye, ENT and dental"),
    Category(code="other", name_zh="医技及其他", name_en="Other specialties"),
)


# --------------------------------------------------------------------------------------
# Departments
# --------------------------------------------------------------------------------------

_ID_ZH = "请携带本人身份证或医保卡（电子医保凭证亦可）"
_ID_EN = "Bring your resident ID card or medical insurance card (the e-card also works)"

DEPARTMENTS: Final = (
    # ---- 内科系统 -------------------------------------------------------------------
    Department(
        code="IM",
        name_zh="内科",
        name_en="General Internal Medicine",
        category_code="internal",
        campus_code="main",
        location_zh="门诊楼2层A区",
        location_en="Outpatient Building, 2F, Area A",
        pinyin="nk",
        description_zh="诊治常见内科疾病及发热、乏力等症状，不确定挂哪个科时可先看内科。",
        description_en=(
            "Common internal conditions and symptoms such as fever or fatigue; "
            "start here if unsure which department to choose."
        ),
        bring_zh=f"{_ID_ZH}，以及近期的病历和检查报告。",
        bring_en=f"{_ID_EN}, plus recent medical records and test results.",
        has_department_sessions=True,
    ),
    Department(
        code="CARD",
        name_zh="心血管内科",
        name_en="Cardiology",
        category_code="internal",
        campus_code="main",
        location_zh="门诊楼2层B区",
        location_en="Outpatient Building, 2F, Area B",
        pinyin="xxgnk",
        description_zh="高血压、冠心病、心律失常、心力衰竭等心血管疾病。",
        description_en="Hypertension, coronary heart disease, arrhythmia, heart failure.",
        bring_zh=f"{_ID_ZH}，以及既往心电图、心脏超声报告和正在服用的药物清单。",
        bring_en=f"{_ID_EN}, previous ECGs, echocardiography reports and a list of your medicines.",
    ),
    Department(
        code="NEUR",
        name_zh="神经内科",
        name_en="Neurology",
        category_code="internal",
        campus_code="main",
        location_zh="门诊楼2层C区",
        location_en="Outpatient Building, 2F, Area C",
        pinyin="sjnk",
        description_zh="脑血管病、头痛头晕、癫痫、帕金森病、睡眠障碍等。",
        description_en="Stroke, headache and dizziness, epilepsy, Parkinson's disease, sleep.",
        bring_zh=f"{_ID_ZH}，以及头颅CT或磁共振片子和报告。",
        bring_en=f"{_ID_EN}, plus any head CT or MRI images and reports.",
    ),
    Department(
        code="GI",
        name_zh="消化内科",
        name_en="Gastroenterology",
        category_code="internal",
        campus_code="main",
        location_zh="门诊楼3层A区",
        location_en="Outpatient Building, 3F, Area A",
        pinyin="xhnk",
        description_zh="胃痛、腹泻、反酸、肝病、胃肠镜检查前评估。",
        description_en="Stomach pain, diarrhoea, reflux, liver disease, pre-endoscopy review.",
        bring_zh=f"{_ID_ZH}。如可能当天做胃镜或抽血，请空腹前来。",
        bring_en=f"{_ID_EN}. Come fasting if you may need gastroscopy or blood tests that day.",
    ),
    Department(
        code="RESP",
        name_zh="呼吸内科",
        name_en="Respiratory Medicine",
        category_code="internal",
        campus_code="main",
        location_zh="门诊楼3层B区",
        location_en="Outpatient Building, 3F, Area B",
        pinyin="hxnk",
        description_zh="咳嗽、哮喘、慢阻肺、肺炎、肺结节随访。",
        description_en="Cough, asthma, COPD, pneumonia, follow-up of lung nodules.",
        bring_zh=f"{_ID_ZH}，以及胸部CT片子和肺功能报告；请全程佩戴口罩。",
        bring_en=f"{_ID_EN}, chest CT images and lung function reports; please wear a mask.",
    ),
    Department(
        code="ENDO",
        name_zh="内分泌科",
        name_en="Endocrinology",
        category_code="internal",
        campus_code="main",
        location_zh="门诊楼3层C区",
        location_en="Outpatient Building, 3F, Area C",
        pinyin="nfmk",
        description_zh="糖尿病、甲状腺疾病、肥胖、骨质疏松、痛风。",
        description_en="Diabetes, thyroid disease, obesity, osteoporosis, gout.",
        bring_zh=f"{_ID_ZH}，以及近期血糖记录；需查空腹血糖者请勿进食早餐。",
        bring_en=f"{_ID_EN} and your recent glucose log; skip breakfast if fasting tests are due.",
    ),
    Department(
        code="NEPH",
        name_zh="肾内科",
        name_en="Nephrology",
        category_code="internal",
        campus_code="main",
        location_zh="门诊楼3层D区",
        location_en="Outpatient Building, 3F, Area D",
        pinyin="snk",
        description_zh="慢性肾脏病、肾炎、蛋白尿、血尿、透析患者随访。",
        description_en="Chronic kidney disease, nephritis, proteinuria, dialysis follow-up.",
        bring_zh=f"{_ID_ZH}，以及近期肾功能和尿常规报告。",
        bring_en=f"{_ID_EN}, plus recent kidney function and urinalysis reports.",
    ),
    # ---- 外科系统 -------------------------------------------------------------------
    Department(
        code="SURG",
        name_zh="外科",
        name_en="General Surgery",
        category_code="surgical",
        campus_code="main",
        location_zh="门诊楼4层A区",
        location_en="Outpatient Building, 4F, Area A",
        pinyin="wk",
        description_zh="胆囊结石、疝气、阑尾炎、体表肿物、伤口换药等普通外科疾病。",
        description_en="Gallstones, hernia, appendicitis, skin lumps, wound care.",
        bring_zh=f"{_ID_ZH}，以及超声、CT等影像资料。",
        bring_en=f"{_ID_EN}, plus ultrasound or CT results.",
    ),
    Department(
        code="TBS",
        name_zh="甲状腺乳腺外科",
        name_en="Thyroid and Breast Surgery",
        category_code="surgical",
        campus_code="main",
        location_zh="门诊楼4层B区",
        location_en="Outpatient Building, 4F, Area B",
        pinyin="jzxrxwk",
        description_zh="甲状腺结节、甲状腺癌、乳腺结节、乳腺癌的诊断与手术。",
        description_en="Diagnosis and surgery of thyroid and breast nodules and cancers.",
        bring_zh=f"{_ID_ZH}，以及甲状腺或乳腺超声、钼靶报告。",
        bring_en=f"{_ID_EN}, plus thyroid or breast ultrasound and mammography reports.",
    ),
    Department(
        code="ORTH",
        name_zh="骨科",
        name_en="Orthopaedics",
        category_code="surgical",
        campus_code="main",
        location_zh="门诊楼1层C区",
        location_en="Outpatient Building, 1F, Area C",
        pinyin="gk",
        description_zh="骨折、关节疼痛、颈腰椎疾病、运动损伤。",
        description_en="Fractures, joint pain, neck and back problems, sports injuries.",
        bring_zh=f"{_ID_ZH}，以及X光、CT或磁共振片子；行动不便者可在1层服务台借用轮椅。",
        bring_en=(
            f"{_ID_EN}, plus X-ray, CT or MRI images; wheelchairs can be borrowed "
            "at the 1F service desk."
        ),
    ),
    Department(
        code="URO",
        name_zh="泌尿外科",
        name_en="Urology",
        category_code="surgical",
        campus_code="main",
        location_zh="门诊楼4层C区",
        location_en="Outpatient Building, 4F, Area C",
        pinyin="mnwk",
        description_zh="泌尿系结石、前列腺增生、泌尿系肿瘤、排尿异常。",
        description_en="Urinary stones, enlarged prostate, urological tumours, voiding problems.",
        bring_zh=f"{_ID_ZH}。可能需要留取尿液或做膀胱超声，请适量饮水、不要憋尿过久。",
        bring_en=f"{_ID_EN}. A urine sample or bladder scan may be needed; drink some water.",
    ),
    Department(
        code="ANDR",
        name_zh="男科",
        name_en="Andrology",
        category_code="surgical",
        campus_code="main",
        location_zh="门诊楼4层D区",
        location_en="Outpatient Building, 4F, Area D",
        pinyin="nk",
        description_zh="男性不育、性功能障碍、前列腺炎。仅接诊18周岁及以上男性。",
        description_en="Male infertility, sexual dysfunction, prostatitis. Men aged 18 and over.",
        bring_zh=f"{_ID_ZH}。做精液检查者请禁欲2至7天。",
        bring_en=f"{_ID_EN}. For semen analysis, abstain for 2 to 7 days beforehand.",
        min_age_years=18,
        sex="M",
    ),
    # ---- 妇儿 ---------------------------------------------------------------------
    Department(
        code="GYN",
        name_zh="妇科",
        name_en="Gynaecology",
        category_code="women_children",
        campus_code="main",
        location_zh="妇儿楼2层",
        location_en="Women and Children's Building, 2F",
        pinyin="fk",
        description_zh="月经失调、子宫肌瘤、卵巢囊肿、妇科炎症、宫颈癌筛查。",
        description_en="Period problems, fibroids, ovarian cysts, infections, cervical screening.",
        bring_zh=f"{_ID_ZH}。妇科检查请避开月经期，检查前24小时内避免同房和阴道用药。",
        bring_en=(
            f"{_ID_EN}. Avoid your period for pelvic exams, and intercourse or vaginal "
            "medicines in the 24 hours before."
        ),
        sex="F",
    ),
    Department(
        code="OB",
        name_zh="产科",
        name_en="Obstetrics",
        category_code="women_children",
        campus_code="main",
        location_zh="妇儿楼3层",
        location_en="Women and Children's Building, 3F",
        pinyin="ck",
        description_zh="孕期建档、产前检查、高危妊娠管理、产后复查。",
        description_en=(
            "Pregnancy registration, antenatal care, high-risk pregnancy, postnatal checks."
        ),
        bring_zh=f"{_ID_ZH}，以及《母子健康手册》和既往产检报告。",
        bring_en=f"{_ID_EN}, your maternal and child health handbook and antenatal reports.",
        sex="F",
    ),
    Department(
        code="PED",
        name_zh="儿科",
        name_en="Paediatrics",
        category_code="women_children",
        campus_code="main",
        location_zh="妇儿楼1层（独立出入口）",
        location_en="Women and Children's Building, 1F (separate entrance)",
        pinyin="ek",
        description_zh="14周岁及以下儿童的常见病、发热、咳嗽、腹泻及生长发育评估。",
        description_en="Children up to 14: common illness, fever, cough, diarrhoea, growth checks.",
        bring_zh="请携带患儿的医保卡或身份证（或户口本）和疫苗接种本，须由监护人陪同。",
        bring_en=(
            "Bring the child's insurance card or ID (or household register) and "
            "vaccination record; a guardian must accompany the child."
        ),
        max_age_years=14,
        has_department_sessions=True,
    ),
    # ---- 五官 ---------------------------------------------------------------------
    Department(
        code="OPH",
        name_zh="眼科",
        name_en="Ophthalmology",
        category_code="eye_ent_dental",
        campus_code="main",
        location_zh="门诊楼5层A区",
        location_en="Outpatient Building, 5F, Area A",
        pinyin="yk",
        description_zh="白内障、青光眼、眼底病、近视及干眼。",
        description_en="Cataract, glaucoma, retinal disease, myopia and dry eye.",
        bring_zh=f"{_ID_ZH}和现戴眼镜。散瞳检查后数小时内视物模糊，请勿自行驾车。",
        bring_en=(
            f"{_ID_EN} and your glasses. Pupil dilation blurs vision for a few hours; "
            "do not drive yourself."
        ),
    ),
    Department(
        code="ENT",
        name_zh="耳鼻喉科",
        name_en="Otorhinolaryngology (ENT)",
        category_code="eye_ent_dental",
        campus_code="main",
        location_zh="门诊楼5层B区",
        location_en="Outpatient Building, 5F, Area B",
        pinyin="ebhk",
        description_zh="鼻炎、鼻窦炎、咽喉炎、中耳炎、耳鸣及听力下降。",
        description_en="Rhinitis, sinusitis, sore throat, ear infections, tinnitus, hearing loss.",
        bring_zh=f"{_ID_ZH}，以及既往听力检查或鼻窦CT报告。",
        bring_en=f"{_ID_EN}, plus earlier hearing tests or sinus CT reports.",
    ),
    Department(
        code="DENT",
        name_zh="口腔科",
        name_en="Stomatology (Dental)",
        category_code="eye_ent_dental",
        campus_code="east",
        location_zh="东院门诊楼2层",
        location_en="East Campus Outpatient Building, 2F",
        pinyin="kqk",
        description_zh="龋齿、根管治疗、牙周病、洗牙、拔牙、种植修复。",
        description_en="Caries, root canals, gum disease, scaling, extraction, implants.",
        bring_zh=f"{_ID_ZH}。就诊前请刷牙；拔牙前请告知医生是否服用抗凝药物。",
        bring_en=(
            f"{_ID_EN}. Brush your teeth first, and tell the dentist if you take "
            "blood thinners before an extraction."
        ),
    ),
    # ---- 医技及其他 -----------------------------------------------------------------
    Department(
        code="DERM",
        name_zh="皮肤科",
        name_en="Dermatology",
        category_code="other",
        campus_code="east",
        location_zh="东院门诊楼3层",
        location_en="East Campus Outpatient Building, 3F",
        pinyin="pfk",
        description_zh="湿疹、皮炎、荨麻疹、痤疮、银屑病、真菌感染、带状疱疹。",
        description_en="Eczema, dermatitis, hives, acne, psoriasis, fungal infection, shingles.",
        bring_zh=f"{_ID_ZH}。就诊当天请勿在患处涂抹药物或化妆品。",
        bring_en=f"{_ID_EN}. Do not apply creams or make-up to the affected skin that day.",
    ),
    Department(
        code="TCM",
        name_zh="中医科",
        name_en="Traditional Chinese Medicine",
        category_code="other",
        campus_code="east",
        location_zh="东院门诊楼1层",
        location_en="East Campus Outpatient Building, 1F",
        pinyin="zyk",
        description_zh="中医内科、妇科调理，针灸、推拿治疗。",
        description_en="TCM internal medicine and gynaecology; acupuncture and tuina massage.",
        bring_zh=f"{_ID_ZH}。就诊前请勿刮舌苔、勿进食染色食物，以免影响舌诊。",
        bring_en=(
            f"{_ID_EN}. Do not scrape your tongue or eat strongly coloured food before "
            "the visit; the doctor will look at your tongue."
        ),
    ),
    Department(
        code="ER",
        name_zh="急诊科",
        name_en="Emergency Department",
        category_code="other",
        campus_code="main",
        location_zh="急诊楼1层",
        location_en="Emergency Building, 1F",
        pinyin="jzk",
        description_zh="急症诊治。危及生命的情况请立即拨打120或直接前往急诊，无需预约。",
        description_en=(
            "Urgent care. In a life-threatening emergency call 120 or come straight "
            "in; no appointment is needed."
        ),
        bring_zh=f"{_ID_ZH}；来不及携带证件时请先就诊，稍后补办。",
        bring_en=f"{_ID_EN}; if there is no time, come anyway and register later.",
        has_department_sessions=True,
    ),
    Department(
        code="REHAB",
        name_zh="康复医学科",
        name_en="Rehabilitation Medicine",
        category_code="other",
        campus_code="east",
        location_zh="东院康复楼1层",
        location_en="East Campus Rehabilitation Building, 1F",
        pinyin="kfyxk",
        description_zh="脑卒中后、骨科术后及颈腰痛的康复评估与训练。",
        description_en="Rehabilitation after stroke or orthopaedic surgery; neck and back pain.",
        bring_zh=f"{_ID_ZH}，以及出院小结和手术记录；请穿宽松衣物和运动鞋。",
        bring_en=f"{_ID_EN}, your discharge summary and operation notes; wear loose clothes.",
    ),
)


# --------------------------------------------------------------------------------------
# Doctors
# --------------------------------------------------------------------------------------

DOCTORS: Final = (
    # ---- 内科 IM -----------------------------------------------------------------
    Doctor(
        code="D001",
        name_zh="王建国",
        name_en="Wang Jianguo",
        department_code="IM",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="发热待查，高血压、糖尿病等多种慢病的综合管理。",
        specialty_en="Fever of unknown origin; care of patients with several chronic diseases.",
        capacity=15,
        timetable=((MON, MORNING), (WED, MORNING), (FRI, MORNING)),
    ),
    Doctor(
        code="D002",
        name_zh="李慧",
        name_en="Li Hui",
        department_code="IM",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="常见内科疾病诊治，老年人多病共存与用药调整。",
        specialty_en="Common internal conditions; older patients and medicine review.",
        capacity=20,
        timetable=((TUE, MORNING), (THU, AFTERNOON), (SAT, MORNING)),
    ),
    Doctor(
        code="D003",
        name_zh="张宇",
        name_en="Zhang Yu",
        department_code="IM",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="上呼吸道感染、发热，慢病复诊开药。",
        specialty_en="Upper respiratory infections, fever, repeat prescriptions.",
        capacity=30,
        timetable=((MON, AFTERNOON), (TUE, EVENING), (THU, EVENING)),
    ),
    # ---- 心血管内科 CARD -----------------------------------------------------------
    Doctor(
        code="D004",
        name_zh="刘志强",
        name_en="Liu Zhiqiang",
        department_code="CARD",
        title_code="chief_physician",
        level_code="expert",
        sex="M",
        specialty_zh="冠心病介入治疗，复杂心律失常的诊治。",
        specialty_en="Coronary intervention; complex arrhythmias.",
        capacity=10,
        timetable=((TUE, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D005",
        name_zh="陈静怡",
        name_en="Chen Jingyi",
        department_code="CARD",
        title_code="chief_physician",
        level_code="chief",
        sex="F",
        specialty_zh="难治性高血压，心力衰竭的规范化治疗。",
        specialty_en="Resistant hypertension; guideline-based heart failure care.",
        capacity=15,
        timetable=((MON, MORNING), (WED, AFTERNOON), (FRI, MORNING)),
    ),
    Doctor(
        code="D006",
        name_zh="杨帆",
        name_en="Yang Fan",
        department_code="CARD",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="心律失常，起搏器植入术后随访。",
        specialty_en="Arrhythmias; pacemaker follow-up.",
        capacity=20,
        timetable=((MON, AFTERNOON), (THU, AFTERNOON), (SAT, MORNING)),
    ),
    Doctor(
        code="D007",
        name_zh="赵敏",
        name_en="Zhao Min",
        department_code="CARD",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="高血压、高脂血症，胸闷胸痛的初诊评估。",
        specialty_en="Hypertension, high cholesterol, first assessment of chest pain.",
        capacity=30,
        timetable=((TUE, AFTERNOON), (WED, MORNING), (FRI, EVENING)),
    ),
    # ---- 神经内科 NEUR -------------------------------------------------------------
    Doctor(
        code="D008",
        name_zh="黄文博",
        name_en="Huang Wenbo",
        department_code="NEUR",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="脑血管病的预防与治疗，头痛、眩晕。",
        specialty_en="Prevention and treatment of stroke; headache and vertigo.",
        capacity=15,
        timetable=((MON, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D009",
        name_zh="周丽华",
        name_en="Zhou Lihua",
        department_code="NEUR",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="帕金森病及其他运动障碍疾病。",
        specialty_en="Parkinson's disease and other movement disorders.",
        capacity=20,
        timetable=((TUE, MORNING), (WED, AFTERNOON), (FRI, AFTERNOON)),
    ),
    Doctor(
        code="D010",
        name_zh="吴昊",
        name_en="Wu Hao",
        department_code="NEUR",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="癫痫、睡眠障碍、周围神经病。",
        specialty_en="Epilepsy, sleep disorders, peripheral neuropathy.",
        capacity=30,
        timetable=((MON, AFTERNOON), (WED, MORNING), (SAT, MORNING)),
    ),
    # ---- 消化内科 GI ---------------------------------------------------------------
    Doctor(
        code="D011",
        name_zh="徐海涛",
        name_en="Xu Haitao",
        department_code="GI",
        title_code="chief_physician",
        level_code="expert",
        sex="M",
        specialty_zh="消化道早癌的内镜诊断与治疗，炎症性肠病。",
        specialty_en="Endoscopic diagnosis and treatment of early GI cancer; IBD.",
        capacity=10,
        timetable=((WED, MORNING), (FRI, MORNING)),
    ),
    Doctor(
        code="D012",
        name_zh="孙晓红",
        name_en="Sun Xiaohong",
        department_code="GI",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="胃食管反流病，幽门螺杆菌感染的根除治疗。",
        specialty_en="Reflux disease; H. pylori eradication.",
        capacity=20,
        timetable=((MON, MORNING), (TUE, AFTERNOON), (THU, MORNING)),
    ),
    Doctor(
        code="D013",
        name_zh="胡斌",
        name_en="Hu Bin",
        department_code="GI",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="功能性胃肠病、脂肪肝、慢性胃炎。",
        specialty_en="Functional gut disorders, fatty liver, chronic gastritis.",
        capacity=30,
        timetable=((MON, AFTERNOON), (WED, EVENING), (FRI, AFTERNOON)),
    ),
    # ---- 呼吸内科 RESP -------------------------------------------------------------
    Doctor(
        code="D014",
        name_zh="朱立新",
        name_en="Zhu Lixin",
        department_code="RESP",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="慢性阻塞性肺疾病，肺结节的评估与随访。",
        specialty_en="COPD; assessment and follow-up of lung nodules.",
        capacity=15,
        timetable=((TUE, MORNING), (FRI, MORNING)),
    ),
    Doctor(
        code="D015",
        name_zh="高雅琴",
        name_en="Gao Yaqin",
        department_code="RESP",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="支气管哮喘、慢性咳嗽。",
        specialty_en="Asthma and chronic cough.",
        capacity=20,
        timetable=((MON, MORNING), (WED, AFTERNOON), (SAT, MORNING)),
    ),
    Doctor(
        code="D016",
        name_zh="林涛",
        name_en="Lin Tao",
        department_code="RESP",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="社区获得性肺炎，睡眠呼吸暂停综合征。",
        specialty_en="Community-acquired pneumonia; sleep apnoea.",
        capacity=30,
        timetable=((TUE, AFTERNOON), (THU, MORNING), (THU, EVENING)),
    ),
    # ---- 内分泌科 ENDO -------------------------------------------------------------
    Doctor(
        code="D017",
        name_zh="何秀英",
        name_en="He Xiuying",
        department_code="ENDO",
        title_code="chief_physician",
        level_code="chief",
        sex="F",
        specialty_zh="糖尿病及其并发症，胰岛素泵治疗。",
        specialty_en="Diabetes and its complications; insulin pump therapy.",
        capacity=15,
        timetable=((MON, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D018",
        name_zh="郭鹏",
        name_en="Guo Peng",
        department_code="ENDO",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="甲状腺功能亢进、甲状腺功能减退、甲状腺结节。",
        specialty_en="Overactive and underactive thyroid; thyroid nodules.",
        capacity=20,
        timetable=((TUE, MORNING), (WED, AFTERNOON), (FRI, MORNING)),
    ),
    Doctor(
        code="D019",
        name_zh="马琳",
        name_en="Ma Lin",
        department_code="ENDO",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="肥胖、骨质疏松、高尿酸血症与痛风。",
        specialty_en="Obesity, osteoporosis, high uric acid and gout.",
        capacity=30,
        timetable=((MON, AFTERNOON), (WED, MORNING), (FRI, EVENING)),
    ),
    # ---- 肾内科 NEPH ---------------------------------------------------------------
    Doctor(
        code="D020",
        name_zh="罗建华",
        name_en="Luo Jianhua",
        department_code="NEPH",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="慢性肾脏病、肾小球肾炎，透析通路与透析管理。",
        specialty_en="Chronic kidney disease, glomerulonephritis, dialysis care.",
        capacity=15,
        timetable=((TUE, MORNING), (THU, AFTERNOON)),
    ),
    Doctor(
        code="D021",
        name_zh="梁雪",
        name_en="Liang Xue",
        department_code="NEPH",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="尿检异常（蛋白尿、血尿）、泌尿系感染、高尿酸血症。",
        specialty_en="Abnormal urine tests, urinary infections, high uric acid.",
        capacity=30,
        timetable=((MON, MORNING), (WED, MORNING), (SAT, MORNING)),
    ),
    # ---- 外科 SURG -----------------------------------------------------------------
    Doctor(
        code="D022",
        name_zh="宋振华",
        name_en="Song Zhenhua",
        department_code="SURG",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="肝胆胰外科，腹腔镜胆囊切除等微创手术。",
        specialty_en="Liver, gallbladder and pancreas surgery; laparoscopic cholecystectomy.",
        capacity=15,
        timetable=((MON, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D023",
        name_zh="郑凯",
        name_en="Zheng Kai",
        department_code="SURG",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="疝与腹壁外科，胃肠外科。",
        specialty_en="Hernia and abdominal wall surgery; gastrointestinal surgery.",
        capacity=20,
        timetable=((TUE, MORNING), (FRI, MORNING)),
    ),
    Doctor(
        code="D024",
        name_zh="谢晓东",
        name_en="Xie Xiaodong",
        department_code="SURG",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="体表肿物、外伤清创与换药、下肢静脉曲张。",
        specialty_en="Skin lumps, wound cleaning and dressing, varicose veins.",
        capacity=30,
        timetable=((MON, AFTERNOON), (WED, AFTERNOON), (THU, EVENING)),
    ),
    # ---- 甲状腺乳腺外科 TBS ---------------------------------------------------------
    Doctor(
        code="D025",
        name_zh="韩冰",
        name_en="Han Bing",
        department_code="TBS",
        title_code="chief_physician",
        level_code="special",
        sex="F",
        specialty_zh="乳腺癌综合治疗，保乳手术与乳房重建。",
        specialty_en="Comprehensive breast cancer care; breast-conserving surgery.",
        capacity=6,
        timetable=((WED, MORNING), (SAT, MORNING)),
    ),
    Doctor(
        code="D026",
        name_zh="唐伟",
        name_en="Tang Wei",
        department_code="TBS",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="甲状腺结节及甲状腺癌的手术治疗。",
        specialty_en="Surgery for thyroid nodules and thyroid cancer.",
        capacity=20,
        timetable=((MON, MORNING), (THU, AFTERNOON)),
    ),
    Doctor(
        code="D027",
        name_zh="冯佳",
        name_en="Feng Jia",
        department_code="TBS",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="乳腺结节、乳腺炎，乳腺超声随访。",
        specialty_en="Breast lumps, mastitis, ultrasound follow-up.",
        capacity=30,
        timetable=((TUE, AFTERNOON), (FRI, MORNING), (SAT, MORNING)),
    ),
    # ---- 骨科 ORTH -----------------------------------------------------------------
    Doctor(
        code="D028",
        name_zh="于海军",
        name_en="Yu Haijun",
        department_code="ORTH",
        title_code="chief_physician",
        level_code="expert",
        sex="M",
        specialty_zh="脊柱外科，腰椎间盘突出症、颈椎病的微创治疗。",
        specialty_en="Spine surgery; minimally invasive care of disc herniation.",
        capacity=10,
        timetable=((TUE, MORNING), (FRI, AFTERNOON)),
    ),
    Doctor(
        code="D029",
        name_zh="董立",
        name_en="Dong Li",
        department_code="ORTH",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="关节外科，膝、髋关节置换。",
        specialty_en="Joint surgery; knee and hip replacement.",
        capacity=15,
        timetable=((MON, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D030",
        name_zh="萧明",
        name_en="Xiao Ming",
        department_code="ORTH",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="运动损伤，膝、肩关节镜手术。",
        specialty_en="Sports injuries; knee and shoulder arthroscopy.",
        capacity=20,
        timetable=((WED, MORNING), (FRI, EVENING), (SAT, MORNING)),
    ),
    Doctor(
        code="D031",
        name_zh="程雪梅",
        name_en="Cheng Xuemei",
        department_code="ORTH",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="骨折复查、骨质疏松、颈肩腰腿痛。",
        specialty_en="Fracture follow-up, osteoporosis, neck, back and leg pain.",
        capacity=30,
        timetable=((MON, AFTERNOON), (TUE, AFTERNOON), (THU, AFTERNOON)),
    ),
    # ---- 泌尿外科 URO --------------------------------------------------------------
    Doctor(
        code="D032",
        name_zh="曹国平",
        name_en="Cao Guoping",
        department_code="URO",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="泌尿系结石的微创治疗，前列腺增生。",
        specialty_en="Minimally invasive treatment of stones; enlarged prostate.",
        capacity=15,
        timetable=((MON, MORNING), (WED, MORNING)),
    ),
    Doctor(
        code="D033",
        name_zh="袁超",
        name_en="Yuan Chao",
        department_code="URO",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="肾、膀胱、前列腺肿瘤的腹腔镜手术。",
        specialty_en="Laparoscopic surgery for kidney, bladder and prostate tumours.",
        capacity=20,
        timetable=((TUE, AFTERNOON), (THU, MORNING)),
    ),
    Doctor(
        code="D034",
        name_zh="邓晓丽",
        name_en="Deng Xiaoli",
        department_code="URO",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="尿路感染、排尿功能障碍、女性压力性尿失禁。",
        specialty_en="Urinary infections, voiding problems, female stress incontinence.",
        capacity=30,
        timetable=((WED, AFTERNOON), (FRI, MORNING), (SAT, MORNING)),
    ),
    # ---- 男科 ANDR -----------------------------------------------------------------
    Doctor(
        code="D035",
        name_zh="许志刚",
        name_en="Xu Zhigang",
        department_code="ANDR",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="男性不育、性功能障碍。",
        specialty_en="Male infertility and sexual dysfunction.",
        capacity=20,
        timetable=((TUE, MORNING), (THU, EVENING)),
    ),
    Doctor(
        code="D036",
        name_zh="傅磊",
        name_en="Fu Lei",
        department_code="ANDR",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="慢性前列腺炎、男性生殖系统感染。",
        specialty_en="Chronic prostatitis; male genital infections.",
        capacity=30,
        timetable=((MON, AFTERNOON), (WED, EVENING), (SAT, MORNING)),
    ),
    # ---- 妇科 GYN ------------------------------------------------------------------
    Doctor(
        code="D037",
        name_zh="沈美玲",
        name_en="Shen Meiling",
        department_code="GYN",
        title_code="chief_physician",
        level_code="special",
        sex="F",
        specialty_zh="妇科肿瘤，宫腔镜、腹腔镜微创手术。",
        specialty_en="Gynaecological oncology; hysteroscopic and laparoscopic surgery.",
        capacity=6,
        timetable=((THU, MORNING),),
    ),
    Doctor(
        code="D038",
        name_zh="曾丽",
        name_en="Zeng Li",
        department_code="GYN",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="子宫肌瘤、卵巢囊肿、月经失调。",
        specialty_en="Fibroids, ovarian cysts, menstrual disorders.",
        capacity=20,
        timetable=((MON, MORNING), (WED, AFTERNOON), (FRI, MORNING)),
    ),
    Doctor(
        code="D039",
        name_zh="彭雨",
        name_en="Peng Yu",
        department_code="GYN",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="阴道炎等妇科炎症，宫颈癌筛查（TCT、HPV）。",
        specialty_en="Vaginal infections; cervical screening (cytology and HPV).",
        capacity=30,
        timetable=((TUE, MORNING), (TUE, EVENING), (SAT, MORNING)),
    ),
    # ---- 产科 OB -------------------------------------------------------------------
    Doctor(
        code="D040",
        name_zh="吕红",
        name_en="Lyu Hong",
        department_code="OB",
        title_code="chief_physician",
        level_code="chief",
        sex="F",
        specialty_zh="高危妊娠、妊娠期高血压疾病。",
        specialty_en="High-risk pregnancy; hypertension in pregnancy.",
        capacity=15,
        timetable=((MON, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D041",
        name_zh="苏婷",
        name_en="Su Ting",
        department_code="OB",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="妊娠期糖尿病，产前检查与孕期营养指导。",
        specialty_en="Gestational diabetes; antenatal care and nutrition advice.",
        capacity=20,
        timetable=((TUE, MORNING), (WED, AFTERNOON), (FRI, AFTERNOON)),
    ),
    Doctor(
        code="D042",
        name_zh="蒋慧敏",
        name_en="Jiang Huimin",
        department_code="OB",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="孕早期建档、常规产检、产后42天复查。",
        specialty_en="Booking visit, routine antenatal checks, six-week postnatal check.",
        capacity=30,
        timetable=((MON, AFTERNOON), (WED, MORNING), (SAT, MORNING)),
    ),
    # ---- 儿科 PED ------------------------------------------------------------------
    Doctor(
        code="D043",
        name_zh="蔡永明",
        name_en="Cai Yongming",
        department_code="PED",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="小儿呼吸系统疾病，反复呼吸道感染。",
        specialty_en="Children's respiratory disease; recurrent chest infections.",
        capacity=15,
        timetable=((TUE, MORNING), (FRI, MORNING)),
    ),
    Doctor(
        code="D044",
        name_zh="贾丽娜",
        name_en="Jia Lina",
        department_code="PED",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="儿童哮喘、过敏性鼻炎、食物过敏。",
        specialty_en="Childhood asthma, hay fever, food allergy.",
        capacity=20,
        timetable=((MON, MORNING), (THU, AFTERNOON), (SAT, MORNING)),
    ),
    Doctor(
        code="D045",
        name_zh="丁晨",
        name_en="Ding Chen",
        department_code="PED",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="小儿发热、腹泻，生长发育评估。",
        specialty_en="Fever and diarrhoea in children; growth assessment.",
        capacity=30,
        timetable=((WED, MORNING), (WED, EVENING), (FRI, EVENING)),
    ),
    Doctor(
        code="D046",
        name_zh="魏小雨",
        name_en="Wei Xiaoyu",
        department_code="PED",
        title_code="resident",
        level_code="general",
        sex="F",
        specialty_zh="儿童常见病，疫苗接种咨询。",
        specialty_en="Common childhood illness; vaccination advice.",
        capacity=30,
        timetable=((MON, EVENING), (THU, EVENING)),
    ),
    # ---- 眼科 OPH ------------------------------------------------------------------
    Doctor(
        code="D047",
        name_zh="薛光明",
        name_en="Xue Guangming",
        department_code="OPH",
        title_code="chief_physician",
        level_code="expert",
        sex="M",
        specialty_zh="白内障、青光眼手术。",
        specialty_en="Cataract and glaucoma surgery.",
        capacity=10,
        timetable=((MON, MORNING), (WED, MORNING)),
    ),
    Doctor(
        code="D048",
        name_zh="叶青",
        name_en="Ye Qing",
        department_code="OPH",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="眼底病，糖尿病视网膜病变，黄斑疾病。",
        specialty_en="Retinal disease, diabetic retinopathy, macular disease.",
        capacity=20,
        timetable=((TUE, MORNING), (THU, AFTERNOON)),
    ),
    Doctor(
        code="D049",
        name_zh="潘宁",
        name_en="Pan Ning",
        department_code="OPH",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="屈光不正、儿童青少年近视防控、干眼。",
        specialty_en="Refractive error, myopia control in children, dry eye.",
        capacity=30,
        timetable=((MON, AFTERNOON), (WED, EVENING), (SAT, MORNING)),
    ),
    # ---- 耳鼻喉科 ENT --------------------------------------------------------------
    Doctor(
        code="D050",
        name_zh="杜建平",
        name_en="Du Jianping",
        department_code="ENT",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="慢性鼻窦炎鼻内镜手术，过敏性鼻炎。",
        specialty_en="Endoscopic sinus surgery; allergic rhinitis.",
        capacity=15,
        timetable=((TUE, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D051",
        name_zh="戴丽萍",
        name_en="Dai Liping",
        department_code="ENT",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="耳鸣、突发性耳聋、中耳炎。",
        specialty_en="Tinnitus, sudden hearing loss, middle ear infections.",
        capacity=20,
        timetable=((MON, MORNING), (WED, AFTERNOON)),
    ),
    Doctor(
        code="D052",
        name_zh="夏天宇",
        name_en="Xia Tianyu",
        department_code="ENT",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="咽喉炎、扁桃体炎、声音嘶哑。",
        specialty_en="Sore throat, tonsillitis, hoarseness.",
        capacity=30,
        timetable=((TUE, AFTERNOON), (FRI, MORNING), (FRI, EVENING)),
    ),
    # ---- 口腔科 DENT (东院) ----------------------------------------------------------
    Doctor(
        code="D053",
        name_zh="钟伟",
        name_en="Zhong Wei",
        department_code="DENT",
        title_code="chief_physician",
        level_code="special",
        sex="M",
        specialty_zh="种植修复，复杂牙列缺损的修复治疗。",
        specialty_en="Dental implants; restoring complex tooth loss.",
        capacity=6,
        timetable=((TUE, AFTERNOON), (SAT, MORNING)),
    ),
    Doctor(
        code="D054",
        name_zh="汪芳",
        name_en="Wang Fang",
        department_code="DENT",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="牙体牙髓病，显微根管治疗。",
        specialty_en="Endodontics; microscope-assisted root canal treatment.",
        capacity=12,
        timetable=((MON, MORNING), (WED, MORNING), (FRI, AFTERNOON)),
    ),
    Doctor(
        code="D055",
        name_zh="田雨欣",
        name_en="Tian Yuxin",
        department_code="DENT",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="牙周病、洁治（洗牙）、儿童口腔预防。",
        specialty_en="Gum disease, scaling and cleaning, children's preventive dentistry.",
        capacity=16,
        timetable=((MON, AFTERNOON), (THU, MORNING), (THU, EVENING)),
    ),
    # ---- 皮肤科 DERM (东院) ----------------------------------------------------------
    Doctor(
        code="D056",
        name_zh="任建军",
        name_en="Ren Jianjun",
        department_code="DERM",
        title_code="chief_physician",
        level_code="chief",
        sex="M",
        specialty_zh="银屑病、湿疹、慢性荨麻疹。",
        specialty_en="Psoriasis, eczema, chronic hives.",
        capacity=15,
        timetable=((WED, MORNING), (FRI, MORNING)),
    ),
    Doctor(
        code="D057",
        name_zh="姜雪",
        name_en="Jiang Xue",
        department_code="DERM",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="痤疮、色素性皮肤病、激光美容。",
        specialty_en="Acne, pigmentation disorders, laser and cosmetic dermatology.",
        capacity=20,
        timetable=((TUE, MORNING), (THU, AFTERNOON), (SAT, MORNING)),
    ),
    Doctor(
        code="D058",
        name_zh="范晓鹏",
        name_en="Fan Xiaopeng",
        department_code="DERM",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="皮炎、真菌感染、带状疱疹。",
        specialty_en="Dermatitis, fungal infections, shingles.",
        capacity=30,
        timetable=((MON, MORNING), (WED, AFTERNOON), (WED, EVENING)),
    ),
    # ---- 中医科 TCM (东院) -----------------------------------------------------------
    Doctor(
        code="D059",
        name_zh="方志远",
        name_en="Fang Zhiyuan",
        department_code="TCM",
        title_code="chief_physician",
        level_code="expert",
        sex="M",
        specialty_zh="中医内科调理，脾胃病、失眠的中药治疗。",
        specialty_en="TCM internal medicine; herbal treatment of digestive problems.",
        capacity=10,
        timetable=((TUE, MORNING), (THU, MORNING)),
    ),
    Doctor(
        code="D060",
        name_zh="石慧琳",
        name_en="Shi Huilin",
        department_code="TCM",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="F",
        specialty_zh="中医妇科，月经不调、更年期综合征的调理。",
        specialty_en="TCM gynaecology; irregular periods and menopausal symptoms.",
        capacity=20,
        timetable=((MON, MORNING), (WED, AFTERNOON), (SAT, MORNING)),
    ),
    Doctor(
        code="D061",
        name_zh="姚斌",
        name_en="Yao Bin",
        department_code="TCM",
        title_code="attending_physician",
        level_code="general",
        sex="M",
        specialty_zh="针灸、推拿，颈肩腰腿痛、面瘫。",
        specialty_en="Acupuncture and tuina; neck, back and leg pain, facial palsy.",
        capacity=20,
        timetable=((TUE, AFTERNOON), (FRI, AFTERNOON), (FRI, EVENING)),
    ),
    # ---- 急诊科 ER: doctors staff the department sessions only ---------------------------
    Doctor(
        code="D062",
        name_zh="谭刚",
        name_en="Tan Gang",
        department_code="ER",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="急危重症救治、急性中毒、多发伤。",
        specialty_en="Critical emergencies, acute poisoning, multiple injuries.",
        capacity=20,
        timetable=(),
    ),
    Doctor(
        code="D063",
        name_zh="邹颖",
        name_en="Zou Ying",
        department_code="ER",
        title_code="resident",
        level_code="general",
        sex="F",
        specialty_zh="急性发热、腹痛，外伤的初步处理。",
        specialty_en="Acute fever and abdominal pain; first treatment of injuries.",
        capacity=30,
        timetable=(),
    ),
    # ---- 康复医学科 REHAB (东院) -----------------------------------------------------
    Doctor(
        code="D064",
        name_zh="熊志明",
        name_en="Xiong Zhiming",
        department_code="REHAB",
        title_code="associate_chief_physician",
        level_code="associate",
        sex="M",
        specialty_zh="脑卒中后康复，骨科术后康复。",
        specialty_en="Rehabilitation after stroke and after orthopaedic surgery.",
        capacity=15,
        timetable=((MON, MORNING), (WED, MORNING), (FRI, MORNING)),
    ),
    Doctor(
        code="D065",
        name_zh="金晓燕",
        name_en="Jin Xiaoyan",
        department_code="REHAB",
        title_code="attending_physician",
        level_code="general",
        sex="F",
        specialty_zh="颈腰痛康复，运动疗法与物理治疗。",
        specialty_en="Neck and back pain rehabilitation; exercise and physical therapy.",
        capacity=20,
        timetable=((TUE, AFTERNOON), (THU, AFTERNOON), (SAT, MORNING)),
    ),
)


# --------------------------------------------------------------------------------------
# Department-level sessions (普通号 / 科室号, no named doctor)
# --------------------------------------------------------------------------------------

DEPARTMENT_SESSIONS: Final = (
    # 内科普通门诊: weekday days and evenings, weekend mornings.
    *(
        DepartmentSession("IM", weekday, period, 40)
        for weekday in (MON, TUE, WED, THU, FRI)
        for period in (MORNING, AFTERNOON)
    ),
    *(DepartmentSession("IM", weekday, EVENING, 20) for weekday in (MON, TUE, WED, THU, FRI)),
    DepartmentSession("IM", SAT, MORNING, 30),
    DepartmentSession("IM", SUN, MORNING, 20),
    # 儿科普通门诊: every day, including an evening clinic for children after school.
    *(
        DepartmentSession("PED", weekday, period, 40 if period != EVENING else 30)
        for weekday in (MON, TUE, WED, THU, FRI, SAT, SUN)
        for period in (MORNING, AFTERNOON, EVENING)
    ),
    # 急诊科: open every period of every day (the real department never closes; the demo
    # only books the three outpatient periods).
    *(
        DepartmentSession("ER", weekday, period, 60 if period != EVENING else 40)
        for weekday in (MON, TUE, WED, THU, FRI, SAT, SUN)
        for period in (MORNING, AFTERNOON, EVENING)
    ),
)


# --------------------------------------------------------------------------------------
# Staff logins
# --------------------------------------------------------------------------------------

# This is a public demo: the passwords below are deliberately simple and are printed by
# the demo when it starts. A real deployment never seeds these accounts; it creates its
# own users with their own passwords.
STAFF: Final = (
    StaffAccount(
        username="admin", display_name="系统管理员", roles=("admin",), password="admin123"
    ),
    StaffAccount(
        username="scheduler",
        display_name="门诊部排班员 严敏",
        roles=("scheduler",),
        password="scheduler123",
    ),
    StaffAccount(
        username="registrar",
        display_name="挂号收费员 陆静",
        roles=("registrar",),
        password="registrar123",
    ),
    StaffAccount(
        username="nurse",
        display_name="分诊护士 尹娟",
        roles=("nurse",),
        password="nurse123",
    ),
    StaffAccount(
        username="doctor",
        display_name="张宇",
        roles=("doctor",),
        password="doctor123",
        doctor_code="D003",
    ),
    StaffAccount(
        username="finance",
        display_name="财务 卢倩",
        roles=("finance",),
        password="finance123",
    ),
    StaffAccount(
        username="supervisor",
        display_name="门诊值班主管 韩冰",
        roles=("supervisor",),
        password="supervisor123",
    ),
    # Reads the audit trail and changes nothing.
    StaffAccount(
        username="auditor",
        display_name="审计科 钟岚",
        roles=("auditor",),
        password="auditor123",
    ),
    # An administrator who signs in with a second factor, as real staff do; its secret is
    # public (printed), so it protects nothing beyond showing how the sign-in works.
    StaffAccount(
        username="director",
        display_name="信息科主任 沈卓",
        roles=("admin",),
        password="director123",
        totp_secret="YUYUEDEMOSECONDFACTOR234567ABCDE",
    ),
)


# --------------------------------------------------------------------------------------
# Demo patients
# --------------------------------------------------------------------------------------

# Ages are as of late 2026. The phone numbers follow the well-known 13800138000 pattern of
# obviously fake numbers. 张晓燕 and her father 张国强 are held by one account (her phone).
DEMO_PATIENTS: Final = (
    DemoPatient(
        code="P001",
        name_zh="张晓燕",
        sex="F",
        birth_date=date(1979, 3, 14),
        id_number="110105197903140026",
        phone="13800138000",
        account_phone="13800138000",
        relation="self",
    ),
    DemoPatient(
        code="P002",
        name_zh="张国强",
        sex="M",
        birth_date=date(1951, 6, 8),
        id_number="110102195106080034",
        phone="13600136000",
        account_phone="13800138000",
        relation="parent",
    ),
    DemoPatient(
        code="P003",
        name_zh="刘子涵",
        sex="M",
        birth_date=date(2020, 5, 20),
        id_number="310104202005200052",
        phone="13900139000",
        account_phone="13900139000",
        relation="child",
    ),
    DemoPatient(
        code="P004",
        name_zh="王磊",
        sex="M",
        birth_date=date(1990, 9, 1),
        id_number="44010619900901019X",
        phone="18600186000",
        account_phone="18600186000",
        relation="self",
    ),
    DemoPatient(
        code="P005",
        name_zh="陈丽",
        sex="F",
        birth_date=date(1996, 12, 25),
        id_number="330106199612250045",
        phone="15800158000",
        account_phone="15800158000",
        relation="self",
    ),
    DemoPatient(
        code="P006",
        name_zh="李桂兰",
        sex="F",
        birth_date=date(1958, 2, 11),
        id_number="510107195802110088",
        phone="13700137000",
        account_phone="13700137000",
        relation="self",
    ),
)
