"""Kunming's county-level divisions, their townships, roads and population weights.

Administrative codes are the real GB/T 2260 codes of 昆明市 (5301xx). Population shares follow
the 2020 census roughly (rounded, in ten-thousands); township and road names are real or
plausible names used to make synthetic addresses, not an authoritative gazetteer. Two districts
were counties with other codes until recently (呈贡县 530121 until 2011, 晋宁县 530122 until
2016): residents born before the change keep the old code in their identity numbers, as real
people do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class District:
    code: str
    name: str
    population: int  # ten-thousands, 2020 census (rounded)
    urban: bool  # part of the central city (more education, more enterprises, denser buses)
    ethnic_profile: str  # key into people.ETHNIC_PROFILES
    townships: tuple[str, ...]
    legacy_code: str | None = None  # ID address code used for people born before `legacy_until`
    legacy_until: int | None = None  # year


DISTRICTS: tuple[District, ...] = (
    District("530102", "五华区", 114, True, "urban", (
        "华山街道", "护国街道", "大观街道", "龙翔街道", "丰宁街道", "莲华街道", "红云街道",
        "黑林铺街道", "普吉街道", "西翥街道")),
    District("530103", "盘龙区", 99, True, "urban", (
        "拓东街道", "鼓楼街道", "东华街道", "联盟街道", "金辰街道", "青云街道", "龙泉街道",
        "茨坝街道", "双龙街道", "松华街道", "滇源街道", "阿子营街道")),
    District("530111", "官渡区", 160, True, "urban", (
        "关上街道", "太和街道", "吴井街道", "金马街道", "小板桥街道", "官渡街道", "矣六街道",
        "六甲街道", "大板桥街道", "阿拉街道")),
    District("530112", "西山区", 101, True, "urban", (
        "金碧街道", "永昌街道", "前卫街道", "福海街道", "棕树营街道", "西苑街道", "马街街道",
        "碧鸡街道", "海口街道", "团结街道")),
    District("530113", "东川区", 26, False, "rural", (
        "铜都街道", "碧谷街道", "汤丹镇", "因民镇", "阿旺镇", "乌龙镇", "红土地镇", "拖布卡镇",
        "舍块乡")),
    District("530114", "呈贡区", 66, True, "urban", (
        "龙城街道", "洛龙街道", "吴家营街道", "雨花街道", "乌龙街道", "大渔街道", "七甸街道",
        "洛羊街道", "马金铺街道", "斗南街道"), "530121", 2011),
    District("530115", "晋宁区", 35, False, "rural", (
        "昆阳街道", "宝峰街道", "晋城街道", "二街镇", "上蒜镇", "六街镇", "双河彝族乡",
        "夕阳彝族乡"), "530122", 2016),
    District("530124", "富民县", 15, False, "rural", (
        "永定街道", "大营街道", "罗免镇", "赤鹫镇", "款庄镇", "散旦镇", "东村镇")),
    District("530125", "宜良县", 42, False, "rural", (
        "匡远街道", "南羊街道", "汤池街道", "北古城镇", "狗街镇", "马街镇",
        "耿家营彝族苗族乡", "九乡彝族回族乡")),
    District("530126", "石林彝族自治县", 25, False, "yi", (
        "鹿阜街道", "石林街道", "板桥街道", "西街口镇", "长湖镇", "圭山镇", "大可乡")),
    District("530127", "嵩明县", 42, False, "rural", (
        "嵩阳街道", "杨桥街道", "小街镇", "杨林镇", "牛栏江镇")),
    District("530128", "禄劝彝族苗族自治县", 40, False, "yi_miao", (
        "屏山街道", "崇德街道", "转龙镇", "撒营盘镇", "茂山镇", "团街镇", "中屏镇", "皎平渡镇",
        "乌东德镇", "汤郎乡", "九龙镇", "翠华镇", "则黑乡", "雪山乡", "马鹿塘乡", "云龙乡")),
    District("530129", "寻甸回族彝族自治县", 46, False, "hui_yi", (
        "仁德街道", "塘子街道", "金所街道", "羊街镇", "柯渡镇", "倘甸镇", "功山镇", "河口镇",
        "七星镇", "先锋镇", "鸡街镇", "凤仪乡", "六哨乡", "甸沙乡", "联合乡")),
    District("530181", "安宁市", 48, False, "urban", (
        "连然街道", "金方街道", "八街街道", "温泉街道", "太平新城街道", "青龙街道", "县街街道",
        "草铺街道", "禄脿街道")),
)

CITY_CODE = "530100"

# Identity numbers issued elsewhere and kept after moving one's household registration here.
OTHER_ID_REGIONS: tuple[str, ...] = (
    "530302",  # 曲靖市麒麟区
    "530402",  # 玉溪市红塔区
    "532301",  # 楚雄市
    "532901",  # 大理市
    "530602",  # 昭通市昭阳区
    "532501",  # 个旧市
    "510107",  # 成都市武侯区
    "520102",  # 贵阳市南明区
)

ROADS: tuple[str, ...] = (
    "北京路", "人民中路", "人民西路", "东风东路", "东风西路", "青年路", "滇池路", "金碧路",
    "春城路", "白塔路", "穿金路", "广福路", "日新路", "西昌路", "一二一大街", "学府路",
    "环城南路", "环城西路", "环城北路", "二环西路", "二环北路", "关上中路", "民航路", "世纪城路",
    "小康大道", "彩云北路", "联大街", "景明路", "昆阳路", "月牙塘路", "虹山东路", "建设路",
    "盘龙路", "新闻路", "福德路", "前兴路", "书林街", "正义路", "威远街", "翠湖南路",
    "圆通街", "龙泉路", "金星路", "霖雨路", "林溪路", "梁源路", "春雨路", "兴隆路",
)

VILLAGE_WORDS: tuple[str, ...] = (
    "大坝", "小河", "新庄", "上营", "下营", "河湾", "松林", "龙潭", "石头", "马街", "杨家",
    "李家", "张家", "大营", "小营", "三家", "中和", "白邑", "水井", "麦地", "竹园", "果园",
    "高坡", "花椒", "水塘", "凤凰", "长坡", "新街", "老街", "沙沟",
)

COMMUNITY_WORDS: tuple[str, ...] = (
    "翠湖", "金马", "碧鸡", "春苑", "明珠", "青云", "龙泉", "滇池", "新城", "锦苑", "福德",
    "和平", "丰宁", "红云", "佳园", "惠园", "顺城", "同德", "书林", "东华", "西苑", "南坝",
    "北辰", "世纪", "康乐", "兴隆", "宝海", "怡景", "海源", "彩云",
)


def district_weights() -> np.ndarray:
    """Probability of each district for a resident (population share)."""
    pop = np.array([d.population for d in DISTRICTS], dtype=np.float64)
    return pop / pop.sum()


def townships() -> tuple[list[str], np.ndarray, np.ndarray]:
    """All townships, the district index of each, and each district's first township index."""
    names: list[str] = []
    owner: list[int] = []
    first = np.zeros(len(DISTRICTS) + 1, dtype=np.int64)
    for i, d in enumerate(DISTRICTS):
        first[i] = len(names)
        names.extend(d.townships)
        owner.extend([i] * len(d.townships))
    first[-1] = len(names)
    return names, np.array(owner, dtype=np.int64), first
