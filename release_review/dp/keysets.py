"""Public key sets: group-by values that are known without looking at the data.

A DP group-by must not reveal which groups exist in the data unless the set of groups is public.
When every grouping column has a public domain, the release covers exactly the public keys
(missing groups released as noisy zeros, values outside the domain left out) and no δ is
spent on keys. Otherwise the keys are private and the release uses DP thresholding (OpenDP's
stable key release: approximate DP with δ).

Where public domains come from, first match wins:

1. the spec's own ``keys`` (values the analyst lists: chosen without the data, so public);
2. the catalog: a column whose catalog *label* (its standard data-element name, 数据元名称)
   names a published code set listed here — GB/T 2260 county-level divisions of 昆明市 (codes
   and names), GB/T 2261.1 sex, GB/T 2261.2 marital status, GB/T 4658 education, GB 3304
   ethnic groups, GB/T 4754-2017 industry sections — and the operators' published category
   lists (bus card types, registration status, contribution status).

Only genuinely public domains belong here: OpenDP's own warning applies, whatever is declared
public is not protected. The table can be extended by the deployment (``PublicKeySets``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from hub.catalog.records import ColumnRecord

KUNMING_DISTRICTS: tuple[tuple[str, str], ...] = (  # GB/T 2260, 昆明市 (5301xx)
    ("530102", "五华区"), ("530103", "盘龙区"), ("530111", "官渡区"), ("530112", "西山区"),
    ("530113", "东川区"), ("530114", "呈贡区"), ("530115", "晋宁区"), ("530124", "富民县"),
    ("530125", "宜良县"), ("530126", "石林彝族自治县"), ("530127", "嵩明县"),
    ("530128", "禄劝彝族苗族自治县"), ("530129", "寻甸回族彝族自治县"), ("530181", "安宁市"),
)
ETHNIC_GROUPS: tuple[str, ...] = tuple(  # GB 3304-1991, in code order 01..56
    "汉族 蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 白族 土家族 "
    "哈尼族 哈萨克族 傣族 黎族 傈僳族 佤族 畲族 高山族 拉祜族 水族 东乡族 纳西族 景颇族 "
    "柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 毛南族 仡佬族 锡伯族 阿昌族 普米族 "
    "塔吉克族 怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 保安族 裕固族 京族 塔塔尔族 独龙族 "
    "鄂伦春族 赫哲族 门巴族 珞巴族 基诺族".split()
)
INDUSTRY_SECTIONS: tuple[tuple[str, str], ...] = (  # GB/T 4754-2017 门类
    ("A", "农、林、牧、渔业"), ("B", "采矿业"), ("C", "制造业"),
    ("D", "电力、热力、燃气及水生产和供应业"), ("E", "建筑业"), ("F", "批发和零售业"),
    ("G", "交通运输、仓储和邮政业"), ("H", "住宿和餐饮业"), ("I", "信息传输、软件和信息技术服务业"),
    ("J", "金融业"), ("K", "房地产业"), ("L", "租赁和商务服务业"), ("M", "科学研究和技术服务业"),
    ("N", "水利、环境和公共设施管理业"), ("O", "居民服务、修理和其他服务业"), ("P", "教育"),
    ("Q", "卫生和社会工作"), ("R", "文化、体育和娱乐业"), ("S", "公共管理、社会保障和社会组织"),
    ("T", "国际组织"),
)


@dataclass(frozen=True)
class CodeSet:
    """A published list of values and where it comes from."""

    source: str
    values: tuple[object, ...]


STANDARD_CODE_SETS: dict[tuple[str, str], CodeSet] = {
    # (catalog label, column kind) -> code set
    ("区县代码", "text"): CodeSet("GB/T 2260 (昆明市)", tuple(c for c, _ in KUNMING_DISTRICTS)),
    ("区县", "text"): CodeSet("GB/T 2260 (昆明市)", tuple(n for _, n in KUNMING_DISTRICTS)),
    ("站点所在区县", "text"): CodeSet("GB/T 2260 (昆明市)", tuple(n for _, n in KUNMING_DISTRICTS)),
    ("性别", "text"): CodeSet("GB/T 2261.1", ("男", "女")),
    ("婚姻状况", "text"): CodeSet("GB/T 2261.2", ("未婚", "已婚", "离婚", "丧偶")),
    ("文化程度", "text"): CodeSet("GB/T 4658", (
        "未上学", "小学", "初中", "高中", "中专", "大学专科", "大学本科", "硕士研究生", "博士研究生")),
    ("民族", "text"): CodeSet("GB 3304", ETHNIC_GROUPS),
    ("行业门类代码", "text"): CodeSet("GB/T 4754-2017", tuple(c for c, _ in INDUSTRY_SECTIONS)),
    ("行业门类", "text"): CodeSet("GB/T 4754-2017", tuple(n for _, n in INDUSTRY_SECTIONS)),
    ("卡类型", "text"): CodeSet("昆明公交 card types", ("普通卡", "学生卡", "老年卡", "爱心卡")),
    ("登记状态", "text"): CodeSet("市场主体登记状态", ("存续", "注销", "吊销")),
    ("缴费状态", "text"): CodeSet("社会保险缴费状态", ("正常", "补缴", "欠缴")),
}


@dataclass(frozen=True)
class PublicKeySets:
    """Looks up the public domain of a grouping column (see module doc)."""

    code_sets: Mapping[tuple[str, str], CodeSet] = field(
        default_factory=lambda: dict(STANDARD_CODE_SETS))

    def for_column(self, column: ColumnRecord, kind: str) -> CodeSet | None:
        return self.code_sets.get((column.label.strip(), kind))
