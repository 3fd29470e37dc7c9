"""Which industrial land classes (工业用地 1001: 100101 / 100102 / 100103) an industry may use.

Pure domain table, no I/O. The classes follow GB 50137-2011 (M1/M2/M3) and the land-use codes
of the third national land survey:

- 100101 一类工业用地: no real nuisance to housing or the public (electronics, software, apparel…);
- 100102 二类工业用地: some nuisance or pollution (machinery, food, textiles, new materials…);
- 100103 三类工业用地: serious nuisance, pollution or hazard (chemicals, metallurgy, building
  materials, foundries, electroplating…).

An industry of nuisance level N may use land of its own class and, for light industry, class 2;
class 3 land is reserved for class-3 industries (a park does not give scarce 三类 land, with its
environmental permits, to a garment maker), and class-3 industries may use nothing else:

    level 1 → 100101, 100102      level 2 → 100102      level 3 → 100103

An industry is looked up by keyword: every keyword contained in the (lower-cased) industry text
counts and the *highest* level found wins, so "化工新材料" is a class-3 industry (conservative:
pollution decides). Industries the table does not know impose no class restriction; the caller
says so in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass

from land.vocabulary import LAND_USE_LABELS

# The industrial land classes, labelled by land.vocabulary.LAND_USE_LABELS.
LAND_CLASSES: tuple[str, ...] = tuple(LAND_USE_LABELS)

ALLOWED_BY_LEVEL: dict[int, tuple[str, ...]] = {
    1: ("100101", "100102"),
    2: ("100102",),
    3: ("100103",),
}

# keyword → nuisance level. Chinese first; a few English names for requirements written in English.
INDUSTRY_LEVEL: dict[str, int] = {
    # level 3: heavy or polluting
    "化工": 3, "精细化工": 3, "石化": 3, "石油化工": 3, "煤化工": 3, "农药": 3, "化肥": 3,
    "建材": 3, "新型建材": 3, "水泥": 3, "陶瓷": 3, "玻璃": 3, "冶金": 3, "冶炼": 3, "钢铁": 3,
    "有色金属": 3, "铸造": 3, "锻造": 3, "电镀": 3, "印染": 3, "制革": 3, "皮革": 3, "造纸": 3,
    "焦化": 3, "危废": 3, "危险废物": 3, "原料药": 3,
    "chemical": 3, "petrochemical": 3, "metallurgy": 3, "smelting": 3, "steel": 3, "foundry": 3,
    "building material": 3, "cement": 3, "electroplating": 3, "dyeing": 3, "tannery": 3, "paper": 3,
    # level 2: some nuisance
    "新材料": 2, "机械": 2, "装备制造": 2, "汽车": 2, "零部件": 2, "食品": 2, "农产品加工": 2,
    "饮料": 2, "酿酒": 2, "白酒": 2, "纺织": 2, "家具": 2, "木材": 2, "生物医药": 2, "医药": 2,
    "制药": 2, "新能源": 2, "电池": 2, "塑料": 2, "橡胶": 2, "包装": 2, "印刷": 2, "金属制品": 2,
    "五金": 2, "饲料": 2, "物流": 2, "仓储": 2, "半导体": 2,
    "new material": 2, "machinery": 2, "equipment": 2, "automotive": 2, "auto parts": 2, "food": 2,
    "beverage": 2, "textile": 2, "furniture": 2, "pharmaceutical": 2, "biopharma": 2,
    "new energy": 2, "battery": 2, "plastics": 2, "packaging": 2, "printing": 2, "logistics": 2,
    # level 1: light, clean
    "电子信息": 1, "电子": 1, "软件": 1, "大数据": 1, "数据中心": 1, "信息技术": 1, "服装": 1,
    "鞋": 1, "精密仪器": 1, "仪器仪表": 1, "医疗器械": 1, "光电": 1, "智能终端": 1, "数字经济": 1,
    "文化创意": 1, "工艺品": 1, "研发": 1, "电商": 1,
    "electronics": 1, "software": 1, "big data": 1, "data center": 1, "apparel": 1, "garment": 1,
    "instruments": 1, "medical device": 1, "optoelectronic": 1, "r&d": 1, "e-commerce": 1,
}


@dataclass(frozen=True, slots=True)
class IndustryClass:
    """The land classes an industry may use, and the keywords that decided it."""

    industry: str
    level: int
    allowed: tuple[str, ...]
    keywords: tuple[str, ...]


def industry_class(industry: str | None) -> IndustryClass | None:
    """The allowed land classes for ``industry``; ``None`` when it is empty or not in the table."""
    if not industry or not industry.strip():
        return None
    text = industry.strip().lower()
    hits = tuple(sorted((k for k in INDUSTRY_LEVEL if k in text), key=lambda k: (-INDUSTRY_LEVEL[k], k)))
    if not hits:
        return None
    level = INDUSTRY_LEVEL[hits[0]]
    return IndustryClass(industry.strip(), level, ALLOWED_BY_LEVEL[level], hits)
