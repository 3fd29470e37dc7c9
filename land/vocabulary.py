"""The land vocabularies, one table each: code → (Chinese, English).

The CLI, the maps and the reports label land with these tables only, so a status reads the same
everywhere (部分占用 in ``land status``, on a map legend and in a bulletin alike).
"""

from __future__ import annotations

from enum import StrEnum

# 工业用地 classes by nuisance and pollution (GB/T 21010: 1001, 100101/100102/100103).
LAND_USE_LABELS: dict[str, tuple[str, str]] = {
    "100101": ("一类工业用地", "Class-1 industrial"),
    "100102": ("二类工业用地", "Class-2 industrial"),
    "100103": ("三类工业用地", "Class-3 industrial"),
}

# The land file's status of an idle parcel (DOMAIN.md: 闲置, 批而未供, 供而未用, 低效).
LAND_STATUS_LABELS: dict[str, tuple[str, str]] = {
    "idle": ("闲置土地", "Idle land"),
    "approved_unsupplied": ("批而未供", "Approved, not supplied"),
    "supplied_unused": ("供而未用", "Supplied, not used"),
    "inefficient": ("低效用地", "Inefficient land"),
}

# A site's supply status from what the projects on it took (``land.status``).
SITE_STATUS_LABELS: dict[str, tuple[str, str]] = {
    "available": ("可供", "Available"),
    "partly_taken": ("部分占用", "Partly taken"),
    "taken": ("已占用", "Taken"),
    "in_production": ("已投产", "In production"),
}
SITE_STATUSES: tuple[str, ...] = tuple(SITE_STATUS_LABELS)
# The statuses of a site still on offer (with space left): what matching ranks and maps show as available.
ON_OFFER_STATUSES: tuple[str, ...] = ("available", "partly_taken")


class SiteKind(StrEnum):
    """The kinds of the land inventory (``land load --kind``; see ``events.choices``)."""

    IDLE = "idle"  # 闲置土地: idle parcels
    FACTORY = "factory"  # 标准厂房: standard factories
    PARK = "park"  # 园区边界: park boundaries
    POI = "poi"  # 高速出口/货运站/港口: points of interest


SITE_KIND_LABELS: dict[str, tuple[str, str]] = {
    "idle": ("地块", "Land parcel"),
    "factory": ("标准厂房", "Standard factory"),
    "park": ("园区", "Park"),
    "poi": ("设施点", "Point of interest"),
}
SITE_KINDS: tuple[str, ...] = tuple(k.value for k in SiteKind)

# Points of interest a requirement can ask to be near.
POI_KIND_LABELS: dict[str, tuple[str, str]] = {
    "highway_exit": ("高速出口", "Highway exit"),
    "rail_freight": ("铁路货运站", "Rail freight"),
    "port": ("港口 / 陆港", "Port / dry port"),
    "airport": ("机场", "Airport"),
    "bus_station": ("客运站", "Bus station"),
}

# Criterion and constraint keys of land.matching, as a planner reads them.
CRITERION_LABELS: dict[str, tuple[str, str]] = {
    "status": ("供应状态", "Availability"),
    "area": ("面积", "Area"),
    "area_fit": ("面积匹配", "Area fit"),
    "land_use": ("用地类型", "Land use"),
    "price": ("价格", "Price"),
    "distance": ("距离", "Distance"),
    "near": ("距离", "Distance"),
    "readiness": ("基础配套", "Site readiness"),
    "plot_ratio": ("容积率", "Plot ratio"),
    "floor_load": ("楼面承重", "Floor load"),
    "clear_height": ("层高", "Clear height"),
    "power": ("供电容量", "Power supply"),
    "floors": ("层数", "Floors"),
}


def zh(table: dict[str, tuple[str, str]], code: object) -> str:
    """The Chinese label of ``code``, or the code itself when the table has none."""
    pair = table.get(str(code)) if code is not None else None
    return pair[0] if pair else ("" if code is None else str(code))


def zh_en(table: dict[str, tuple[str, str]], code: object) -> str:
    """'部分占用 partly_taken'-style: the Chinese label followed by the code (terminal tables)."""
    return f"{zh(table, code)} {code}" if code is not None else ""
