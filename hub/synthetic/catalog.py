"""What each synthetic dataset is: the metadata and column classes written to ``catalog.json``.

``catalog.json`` is the exchange format between ``shuyu data generate`` and the catalog service
(``hub/catalog``), which registers the datasets from it. Format ``shuyu-catalog/1``::

    {"format": "shuyu-catalog/1",
     "generator": {"command": "shuyu data generate", "scale": …, "seed": …, "as_of": "YYYY-MM-DD"},
     "providers": [{"name": "昆明市公安局", "name_en": "…"}, …],
     "datasets": [{"name", "file", "sha256", "rows", "title": {"zh", "en"}, "provider",
                   "description", "update_frequency", "acquired_on", "version",
                   "registration_code", "grade", "open_attribute",
                   "primary_key": [...], "references": [{"columns", "dataset", "target"}],
                   "columns": [{"name", "type", "identifier_class", "group_by_allowed",
                                "label", "description"}]}]}

Grades are 核心/重要/一般 (GB/T 43697-2024), open attributes 无条件/有条件/不予开放, identifier
classes direct_identifier / quasi_identifier / sensitive / other (GB/T 37964-2019), column types
are DuckDB type names. Readers must ignore keys they do not know (forward compatibility).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

FORMAT = "shuyu-catalog/1"
DIRECT, QUASI, SENSITIVE, OTHER = "direct_identifier", "quasi_identifier", "sensitive", "other"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    identifier_class: str
    group_by_allowed: bool
    label: str  # Chinese field name
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "identifier_class": self.identifier_class,
            "group_by_allowed": self.group_by_allowed, "label": self.label,
            "description": self.description,
        }


@dataclass(frozen=True)
class Provider:
    name: str
    name_en: str


@dataclass(frozen=True)
class Dataset:
    name: str
    title_zh: str
    title_en: str
    provider: Provider
    description: str
    update_frequency: str
    grade: str
    open_attribute: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    references: tuple[tuple[str, str, str], ...] = field(default=())  # (column, dataset, column)

    def metadata(self, index: int, as_of: date, sha256: str, rows: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": f"{self.name}.parquet",
            "sha256": sha256,
            "rows": rows,
            "title": {"zh": self.title_zh, "en": self.title_en},
            "provider": self.provider.name,
            "description": self.description,
            "update_frequency": self.update_frequency,
            "acquired_on": as_of.isoformat(),
            "version": f"{as_of.isoformat()}+{sha256[:12]}",
            "registration_code": f"530100-GS-{as_of.year}-{index + 1:04d}",
            "grade": self.grade,
            "open_attribute": self.open_attribute,
            "primary_key": list(self.primary_key),
            "references": [
                {"columns": [c], "dataset": d, "target": [t]} for c, d, t in self.references
            ],
            "columns": [c.to_json() for c in self.columns],
        }


POLICE = Provider("昆明市公安局", "Kunming Public Security Bureau")
MARKET = Provider("昆明市市场监督管理局", "Kunming Administration for Market Regulation")
HRSS = Provider("昆明市人力资源和社会保障局", "Kunming Human Resources and Social Security Bureau")
BUS = Provider("昆明公交集团有限责任公司", "Kunming Public Transport Group")
WATER = Provider("昆明自来水集团有限公司", "Kunming Water Supply Group")
GRID = Provider("云南电网有限责任公司昆明供电局", "Kunming Power Supply Bureau, Yunnan Power Grid")

C = Column
_DISTRICT = (
    C("district_code", "VARCHAR", QUASI, True, "区县代码", "GB/T 2260 code of the county-level division"),
    C("district", "VARCHAR", QUASI, True, "区县", "County-level division of Kunming"),
)

DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "households", "户籍户信息", "Registered households", POLICE,
        "Households of the household register: location down to the community and the full "
        "registered address.", "monthly", "重要", "有条件",
        (
            C("household_id", "VARCHAR", DIRECT, False, "户号", "Household number"),
            *_DISTRICT,
            C("township", "VARCHAR", QUASI, True, "乡镇街道", "Township or sub-district"),
            C("community", "VARCHAR", QUASI, True, "社区村委会", "Community or village committee"),
            C("address", "VARCHAR", DIRECT, False, "户籍地址", "Registered address"),
            C("household_size", "SMALLINT", QUASI, True, "户内人数", "Members registered in the household"),
        ),
        ("household_id",),
    ),
    Dataset(
        "residents", "户籍人口基础信息", "Registered residents", POLICE,
        "Residents of Kunming's household register: identity number, name, sex, birth date, "
        "ethnic group, education, marital status, mobile number and household.",
        "monthly", "重要", "有条件",
        (
            C("resident_id", "VARCHAR", DIRECT, False, "公民身份号码", "18-digit resident identity number (GB 11643)"),
            C("name", "VARCHAR", DIRECT, False, "姓名", "Full name"),
            C("sex", "VARCHAR", QUASI, True, "性别", "男 or 女"),
            C("birth_date", "DATE", QUASI, False, "出生日期", "Date of birth"),
            C("birth_year", "SMALLINT", QUASI, True, "出生年份", "Year of birth"),
            C("ethnicity", "VARCHAR", QUASI, True, "民族", "Ethnic group (some very rare)"),
            C("education", "VARCHAR", QUASI, True, "文化程度", "Highest level of education attained"),
            C("marital_status", "VARCHAR", QUASI, True, "婚姻状况", "Marital status"),
            C("mobile", "VARCHAR", DIRECT, False, "手机号码", "Mobile number (NULL if none)"),
            C("household_id", "VARCHAR", DIRECT, False, "户号", "Household number (households.household_id)"),
            C("relation_to_head", "VARCHAR", QUASI, True, "与户主关系", "Relation to the head of household"),
            *_DISTRICT,
            C("address", "VARCHAR", DIRECT, False, "户籍地址", "Registered address"),
        ),
        ("resident_id",),
        (("household_id", "households", "household_id"),),
    ),
    Dataset(
        "enterprises", "市场主体登记信息", "Registered market entities", MARKET,
        "Companies, individual businesses and farmers' co-operatives registered in Kunming: "
        "credit code, name, legal form, industry, district, founding date, registered capital, "
        "employees and status.", "daily", "一般", "无条件",
        (
            C("credit_code", "VARCHAR", DIRECT, False, "统一社会信用代码", "Unified social credit code (GB 32100)"),
            C("name", "VARCHAR", DIRECT, False, "名称", "Registered name"),
            C("legal_form", "VARCHAR", QUASI, True, "类型", "Legal form"),
            C("legal_representative_id", "VARCHAR", DIRECT, False, "法定代表人身份号码",
              "Identity number of the legal representative or operator (residents.resident_id)"),
            C("industry_code", "VARCHAR", QUASI, True, "行业门类代码", "GB/T 4754-2017 section code"),
            C("industry", "VARCHAR", QUASI, True, "行业门类", "GB/T 4754-2017 section"),
            *_DISTRICT,
            C("founded_date", "DATE", QUASI, False, "成立日期", "Date of establishment"),
            C("founded_year", "SMALLINT", QUASI, True, "成立年份", "Year of establishment"),
            C("registered_capital", "DECIMAL(16,2)", SENSITIVE, False, "注册资本（万元）",
              "Registered capital in 10,000 yuan (heavy-tailed)"),
            C("employees", "INTEGER", SENSITIVE, False, "从业人数", "Number of employees"),
            C("status", "VARCHAR", OTHER, True, "登记状态", "存续, 注销 or 吊销"),
        ),
        ("credit_code",),
        (("legal_representative_id", "residents", "resident_id"),),
    ),
    Dataset(
        "social_insurance", "职工社会保险缴费明细", "Employee social-insurance contributions", HRSS,
        "Monthly contributions per employee and employer over the reference year: wage, "
        "contribution base and the employee's and employer's amounts per insurance.",
        "monthly", "重要", "有条件",
        (
            C("resident_id", "VARCHAR", DIRECT, False, "公民身份号码", "Employee (residents.resident_id)"),
            C("credit_code", "VARCHAR", DIRECT, False, "单位统一社会信用代码", "Employer (enterprises.credit_code)"),
            C("month", "DATE", OTHER, True, "缴费月份", "First day of the contribution month"),
            C("wage", "DECIMAL(12,2)", SENSITIVE, False, "应发工资", "Gross wage of the month, yuan"),
            C("contribution_base", "DECIMAL(12,2)", SENSITIVE, False, "缴费基数", "Contribution base, yuan"),
            C("pension_employee", "DECIMAL(10,2)", SENSITIVE, False, "养老保险个人缴费", "Pension, employee share"),
            C("pension_employer", "DECIMAL(10,2)", SENSITIVE, False, "养老保险单位缴费", "Pension, employer share"),
            C("medical_employee", "DECIMAL(10,2)", SENSITIVE, False, "医疗保险个人缴费", "Medical, employee share"),
            C("medical_employer", "DECIMAL(10,2)", SENSITIVE, False, "医疗保险单位缴费", "Medical, employer share"),
            C("unemployment_employee", "DECIMAL(10,2)", SENSITIVE, False, "失业保险个人缴费", "Unemployment, employee share"),
            C("unemployment_employer", "DECIMAL(10,2)", SENSITIVE, False, "失业保险单位缴费", "Unemployment, employer share"),
            C("injury_employer", "DECIMAL(10,2)", SENSITIVE, False, "工伤保险单位缴费", "Work injury, employer only"),
            C("payment_status", "VARCHAR", OTHER, True, "缴费状态", "正常, 补缴 or 欠缴"),
        ),
        ("resident_id", "credit_code", "month"),
        (("resident_id", "residents", "resident_id"), ("credit_code", "enterprises", "credit_code")),
    ),
    Dataset(
        "bus_cards", "公交卡实名登记信息", "Bus card registrations", BUS,
        "Real-name registration of bus cards: which resident holds which card. Linkage data "
        "kept by the operator and not opened.", "daily", "一般", "不予开放",
        (
            C("card_id", "VARCHAR", DIRECT, False, "卡号", "Card number"),
            C("resident_id", "VARCHAR", DIRECT, False, "持卡人身份号码", "Holder (residents.resident_id)"),
            C("card_type", "VARCHAR", QUASI, True, "卡类型", "普通卡, 学生卡, 老年卡 or 爱心卡"),
            C("issued_date", "DATE", OTHER, False, "开卡日期", "Date the card was issued"),
        ),
        ("card_id",),
        (("resident_id", "residents", "resident_id"),),
    ),
    Dataset(
        "bus_trips", "公交刷卡记录", "Bus card trips", BUS,
        "One week of bus boardings paid by card: card, time, route, stop and fare.",
        "daily", "一般", "有条件",
        (
            C("trip_id", "BIGINT", OTHER, False, "交易流水号", "Row number in time order"),
            C("card_id", "VARCHAR", DIRECT, False, "卡号", "Card (bus_cards.card_id)"),
            C("card_type", "VARCHAR", QUASI, True, "卡类型", "Card type"),
            C("board_time", "TIMESTAMP", QUASI, False, "刷卡时间", "Boarding time, local (UTC+8)"),
            C("route", "VARCHAR", OTHER, True, "线路", "Route name"),
            C("stop_id", "VARCHAR", QUASI, True, "站点编号", "Boarding stop code"),
            C("stop_name", "VARCHAR", QUASI, True, "站点名称", "Boarding stop name (not unique across districts)"),
            C("stop_district", "VARCHAR", OTHER, True, "站点所在区县", "District of the boarding stop"),
            C("fare", "DECIMAL(6,2)", OTHER, False, "票价", "Fare paid, yuan"),
        ),
        ("trip_id",),
        (("card_id", "bus_cards", "card_id"),),
    ),
    Dataset(
        "water_use", "居民用水量", "Household water use", WATER,
        "Monthly metered water use and bill per household over the reference year.",
        "monthly", "一般", "有条件",
        (
            C("household_id", "VARCHAR", DIRECT, False, "户号", "Household (households.household_id)"),
            C("district", "VARCHAR", OTHER, True, "区县", "District of the household"),
            C("month", "DATE", OTHER, True, "月份", "First day of the billing month"),
            C("usage_m3", "INTEGER", SENSITIVE, False, "用水量（立方米）", "Water used, m³"),
            C("amount", "DECIMAL(10,2)", SENSITIVE, False, "水费（元）", "Bill under tiered prices, yuan"),
        ),
        ("household_id", "month"),
        (("household_id", "households", "household_id"),),
    ),
    Dataset(
        "electricity_use", "居民用电量", "Household electricity use", GRID,
        "Monthly metered electricity use and bill per household over the reference year.",
        "monthly", "一般", "有条件",
        (
            C("household_id", "VARCHAR", DIRECT, False, "户号", "Household (households.household_id)"),
            C("district", "VARCHAR", OTHER, True, "区县", "District of the household"),
            C("month", "DATE", OTHER, True, "月份", "First day of the billing month"),
            C("usage_kwh", "INTEGER", SENSITIVE, False, "用电量（千瓦时）", "Electricity used, kWh"),
            C("amount", "DECIMAL(10,2)", SENSITIVE, False, "电费（元）", "Bill under tiered prices, yuan"),
        ),
        ("household_id", "month"),
        (("household_id", "households", "household_id"),),
    ),
)

BY_NAME = {d.name: d for d in DATASETS}


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type a Parquet column of Arrow type `t` is read as."""
    if pa.types.is_dictionary(t):
        return duckdb_type(t.value_type)
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    simple = {
        pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.date32(): "DATE",
        pa.timestamp("us"): "TIMESTAMP", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
    }
    if t not in simple:
        raise ValueError(f"no DuckDB type mapping for Arrow type {t}")
    return simple[t]


def check_schema(spec: Dataset, schema: pa.Schema) -> None:
    """Raise if a generated table's columns or types differ from what the catalog declares."""
    got = [(f.name, duckdb_type(f.type)) for f in schema]
    want = [(c.name, c.type) for c in spec.columns]
    if got != want:
        raise AssertionError(f"{spec.name}: generated columns {got} differ from catalog {want}")


def catalog_document(generator: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    providers = {d.provider.name: d.provider for d in DATASETS}
    used = [providers[e["provider"]] for e in entries]
    return {
        "format": FORMAT,
        "generator": generator,
        "providers": [
            {"name": p.name, "name_en": p.name_en} for p in dict.fromkeys(used)
        ],
        "datasets": entries,
    }
