"""The catalog's vocabularies: grades, open attributes, column classes, access modes, use classes.

Each is a ``StrEnum`` whose *value* is what the control database and the ledger store. Those
values are persisted: renaming one needs a data migration and a note for auditors reading old
ledger entries. Every member also carries its Chinese label (the term the regulations use) and
``parse()`` accepts the value, the member name or the label, so catalog files and the command
line may use either language.

Terms:
- grade (数据分级, GB/T 43697-2024): 核心数据 > 重要数据 > 一般数据;
- open attribute (开放属性): 无条件开放, 有条件开放, 不予开放;
- identifier class (GB/T 37964-2019): direct identifier, quasi-identifier, sensitive attribute;
- access mode: how an authorization lets analysts see a dataset (rows, or aggregates only);
- use class (pricing notice 发改价格〔2025〕65号): 公共治理/公益 (free) or 产业发展 (fee-bearing).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class LabelledEnum(StrEnum):
    """A StrEnum with a Chinese label and a forgiving parser for user input."""

    label: str
    aliases: tuple[str, ...]

    def __new__(cls, value: str, label: str, *aliases: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.aliases = aliases
        return member

    @classmethod
    def parse(cls, text: object, what: str | None = None) -> Self:
        """The member named by `text` (value, name, label or alias); ValueError says the choices."""
        if isinstance(text, cls):
            return text
        key = str(text).strip()
        for member in cls:
            names = (member.value, member.name, member.label, *member.aliases)
            if key in names or key.lower() in (n.lower() for n in names):
                return member
        choices = ", ".join(f"{m.value} ({m.label})" for m in cls)
        raise ValueError(f"{what or cls.__name__} {text!r} is not one of: {choices}")


class Grade(LabelledEnum):
    """数据分级 (GB/T 43697-2024), highest first."""

    CORE = "core", "核心", "核心数据"
    IMPORTANT = "important", "重要", "重要数据"
    GENERAL = "general", "一般", "一般数据"

    @property
    def rank(self) -> int:
        """3 for 核心, 2 for 重要, 1 for 一般 (higher is stricter)."""
        return {Grade.CORE: 3, Grade.IMPORTANT: 2, Grade.GENERAL: 1}[self]


def highest_grade(grades: list[Grade] | tuple[Grade, ...]) -> Grade:
    """就高从严: a product derived from several datasets takes the highest of their grades."""
    if not grades:
        raise ValueError("highest_grade needs at least one grade")
    return max(grades, key=lambda g: g.rank)


class OpenAttribute(LabelledEnum):
    """开放属性 of a public dataset."""

    UNCONDITIONAL = "unconditional", "无条件", "无条件开放"
    CONDITIONAL = "conditional", "有条件", "有条件开放"
    NOT_OPEN = "not_open", "不予开放", "不开放"


class IdentifierClass(LabelledEnum):
    """What a column reveals about a person (GB/T 37964-2019 attribute classes)."""

    DIRECT_IDENTIFIER = "direct_identifier", "直接标识符", "direct"
    QUASI_IDENTIFIER = "quasi_identifier", "准标识符", "quasi"
    SENSITIVE = "sensitive", "敏感属性", "sensitive_attribute"
    OTHER = "other", "其他", "none"


class AccessMode(LabelledEnum):
    """How an authorization lets its analysts see one dataset."""

    ROW_LEVEL = "row_level", "明细", "row"
    AGGREGATE_ONLY = "aggregate_only", "仅聚合", "aggregate"


class UseClass(LabelledEnum):
    """应用场景的用途类别: public-interest use is free, industry use may carry a fee."""

    PUBLIC_GOVERNANCE = (
        "public_governance", "公共治理/公益", "公共治理", "公益", "公益事业", "public",
        "public_interest",
    )
    INDUSTRY_DEVELOPMENT = (
        "industry_development", "产业发展", "行业发展", "产业/行业发展", "industry"
    )


class UpdateFrequency(LabelledEnum):
    """How often the data holder refreshes a dataset (更新频率)."""

    REALTIME = "realtime", "实时"
    DAILY = "daily", "每日", "日"
    WEEKLY = "weekly", "每周", "周"
    MONTHLY = "monthly", "每月", "月"
    QUARTERLY = "quarterly", "每季度", "季度"
    YEARLY = "yearly", "每年", "年", "annual", "annually"
    IRREGULAR = "irregular", "不定期"
    ONCE = "once", "一次性", "static"


class Role(LabelledEnum):
    """The role an actor acts in (DESIGN.md "Who uses it"); `service` is the system itself."""

    AUTHORITY = "authority", "数据主管部门"
    ANALYST = "analyst", "开发人员"
    REVIEWER = "reviewer", "安全审核"
    REGULATOR = "regulator", "监管"
    SERVICE = "service", "系统"
