"""Matching an investor's requirement to idle parcels and standard factories, with reasons.

Pure domain: a function over the land status frame (``warehouse.land.land_status``: one row per
parcel or factory, EPSG:4490), no I/O. The requirement format is in ``shared/DOMAIN.md``.

Which sites
    A requirement with a ``factory`` object asks for factory space (rows of ``kind`` ``factory``);
    otherwise it asks for land (``kind`` ``idle``). The other kind is never a candidate.

Hard constraints (a site must pass all of them; unknown values fail, with the reason "not recorded")
    ``status``      ``available`` or ``partly_taken`` with space left, as of the frame's date.
    ``area``        land: ``remaining_area_mu`` (亩) within ``land_area_mu`` {min, max};
                    factories: ``vacant_area_m2`` (m²) within ``factory.floor_area_m2``.
                    A site that is taken is measured by its whole area, so that it is reported as
                    taken, not as too small.
    ``land_use``    land: the parcel's class is one the industry may use (``land.industry_land``)
                    and, when the requirement lists ``land_use``, one of those.
    ``price``       land: ``price_wan_per_mu`` ≤ ``max_price_wan_per_mu`` (万元/亩);
                    factories: ``rent_yuan_m2_month`` ≤ ``factory.max_rent_yuan_m2_month``.
    ``floor_load``, ``clear_height``, ``power``, ``floors``
                    factories: ``floor_load_kn_m2`` (kN/m²), ``clear_height_m`` (m), ``power_kva``
                    (kVA), ``floors`` within the requirement's {min, max}.
    ``near``        for each ``near`` point, the ground distance ≤ its ``max_km``.

Distances
    True ground distances in kilometres from the site's centroid to the point. Centroids and
    points are projected once into the CGCS2000 3-degree Gauss-Kruger zone whose central meridian
    is nearest the sites' median longitude (EPSG:4534 + (CM − 75°)/3, e.g. EPSG:4536 for 81°E,
    EPSG:4545 for 108°E). The grid distance is divided by the mean Gauss-Kruger scale factor along
    the line, 1 + (e₁² + e₁e₂ + e₂²)/(6R²) with e the offsets from the central meridian (the
    surveyors' projection-distortion correction): up to 1.5° from the central meridian the raw
    grid distance is up to 0.03 % long; corrected, it agrees with the geodesic on the GRS80
    ellipsoid to within 5 cm over 60 km (checked at 87.6°E, 104.6°E, 106.3°E and 121.4°E).
    The centroid, not the nearest boundary, is used: it is where a planner would stand, and for a
    100 亩 parcel (a square of 258 m) the two differ by at most 0.13 km.

Score (0–100) over the sites that pass everything
    A weighted mean of criterion scores in [0, 1]; the convention is that a value exactly at the
    investor's hard limit scores 0.5 and the ideal scores 1:

    ``area_fit``    both bounds: 1 − 0.5·|v − mid| / half-width (the middle of the range is best);
                    one bound b: min(v, b) / max(v, b). Only when the requirement gives a range.
    ``distance``    per ``near`` point: 1 − 0.5·d / max_km; the weight is shared between the points.
    ``price``       1 − 0.5·price / cap; without a cap, cap = the 95th percentile of the prices of
                    all sites of that kind (so the score does not depend on which sites survived);
                    not scored when no site of that kind has a price and there is no cap.
    ``readiness``   land: N/7 for "N通一平" (七通一平 = 1, 五通一平 ≈ 0.71, 三通一平 ≈ 0.43), 0 when
                    not recorded.
    ``plot_ratio``, ``floor_load``, ``clear_height``, ``power`` (only when named in ``weights``)
                    more is better: v / (2·min) with the requirement's min, else v / the 95th
                    percentile of the kind; capped at 1.

    Default weights: area_fit 0.35, distance 0.25, price 0.25, readiness 0.15 (readiness for land
    only). Weights named in the requirement replace the default of that criterion or add a
    criterion; a weight of 0 removes it. The weights of the criteria that apply are normalised to
    sum to 1. Ties (scores equal to two decimals, as printed) are ordered by ``site_id``.

Closest misses
    Sites of the asked kind that fail exactly one hard constraint, best score first (scores computed
    the same way, values beyond a limit scoring towards 0), each with the constraint and its reason.

Speed
    ``prepare_sites`` turns the frame into per-site numpy arrays once (projected centroids, areas,
    prices, class codes…); each requirement is then a handful of vectorised masks over those
    arrays, and only the few rows that are reported are turned into Python objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from land.industry_land import LAND_CLASSES, IndustryClass, industry_class
from land.vocabulary import LAND_USE_LABELS, ON_OFFER_STATUSES

DEFAULT_WEIGHTS: dict[str, float] = {"area_fit": 0.35, "distance": 0.25, "price": 0.25, "readiness": 0.15}
LAND_CRITERIA = ("area_fit", "distance", "price", "readiness", "plot_ratio")
FACTORY_CRITERIA = ("area_fit", "distance", "price", "readiness", "floor_load", "clear_height", "power")
CRITERIA = tuple(dict.fromkeys(LAND_CRITERIA + FACTORY_CRITERIA))
AVAILABLE_STATUSES = ON_OFFER_STATUSES
TIE_DECIMALS = 2  # scores that print the same (0–100, two decimals) are ties, ordered by site_id
FALSE_EASTING_M = 500_000.0  # of the Gauss-Kruger zones EPSG:4534–4554 (no zone prefix)
EARTH_RADIUS_M = 6_371_000.0
SIX_R2_M2 = 6.0 * EARTH_RADIUS_M**2

# Factory attributes a requirement may bound: requirement key → (frame column, criterion, zh, en, unit zh, unit en)
FACTORY_ATTRS: dict[str, tuple[str, str, str, str, str, str]] = {
    "floor_load_kn_m2": ("floor_load_kn_m2", "floor_load", "承重", "floor load", "kN/m²", "kN/m²"),
    "clear_height_m": ("clear_height_m", "clear_height", "层高", "clear height", "米", "m"),
    "power_kva": ("power_kva", "power", "供电容量", "power supply", "kVA", "kVA"),
    "floors": ("floors", "floors", "层数", "floors", "层", "floors"),
}
_EXTRA_COLUMN = {"plot_ratio": "plot_ratio_max", "floor_load": "floor_load_kn_m2", "clear_height": "clear_height_m", "power": "power_kva"}
_EXTRA_REQ_KEY = {"floor_load": "floor_load_kn_m2", "clear_height": "clear_height_m", "power": "power_kva"}

_DESCRIPTIVE_KEYS = {"notes", "note", "contact", "project_id", "investment_wan", "description", "id", "name", "as_of"}
_REQUIREMENT_KEYS = {"investor", "industry", "land_use", "land_area_mu", "max_price_wan_per_mu", "factory", "near", "weights"}
_FACTORY_KEYS = {"floor_area_m2", "max_rent_yuan_m2_month", *FACTORY_ATTRS}
_NUMERALS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_READINESS_RE = re.compile(r"([一二两三四五六七八九十]|\d+)\s*通")


class RequirementError(ValueError):
    """A requirement that cannot be matched: ``field`` names the offending field (``near[1].max_km``)."""

    def __init__(self, field: str, reason_zh: str, reason_en: str) -> None:
        self.field = field
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        super().__init__(f"{field}: {reason_zh} ({reason_en})")


@dataclass(frozen=True, slots=True)
class Range:
    """A closed interval; either end may be open (``None``)."""

    min: float | None = None
    max: float | None = None

    def text(self, unit: str) -> str:
        if self.min is not None and self.max is not None:
            return f"{_num(self.min)}–{_num(self.max)} {unit}"
        if self.min is not None:
            return f"≥ {_num(self.min)} {unit}"
        return f"≤ {_num(self.max)} {unit}"

    @property
    def wishes(self) -> bool:
        """Whether the range says what size is wanted (a positive min or any max)."""
        return bool(self.min) or self.max is not None


@dataclass(frozen=True, slots=True)
class NearPoint:
    """A place the site must be near: lon/lat in CGCS2000 degrees, ``max_km`` ground kilometres."""

    name: str
    lon: float
    lat: float
    max_km: float


@dataclass(frozen=True, slots=True)
class FactorySpec:
    """Factory space wanted: ``floor_area_m2`` bounds the vacant floor space (m²)."""

    floor_area_m2: Range | None = None
    max_rent_yuan_m2_month: float | None = None
    attrs: tuple[tuple[str, Range], ...] = ()  # (requirement key in FACTORY_ATTRS, range)


@dataclass(frozen=True, slots=True)
class Requirement:
    """A parsed investor requirement. ``allowed_classes`` combines the industry table and ``land_use``."""

    investor: str
    industry: str | None = None
    land_use: tuple[str, ...] | None = None
    land_area_mu: Range | None = None
    max_price_wan_per_mu: float | None = None
    factory: FactorySpec | None = None
    near: tuple[NearPoint, ...] = ()
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    named_weights: tuple[str, ...] = ()
    industry_rule: IndustryClass | None = None
    allowed_classes: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        return "factory" if self.factory is not None else "idle"


# ---------------------------------------------------------------------------------------------
# Parsing


def _number(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or value is None:
        raise RequirementError(where, "应为数字", "must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise RequirementError(where, f"应为数字，得到 {value!r}", f"must be a number, got {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise RequirementError(where, f"应为有限数字，得到 {value!r}", f"must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise RequirementError(where, f"应{'大于' if positive else '不小于'} 0，得到 {value}", f"must be {'> 0' if positive else '≥ 0'}, got {value}")
    return float(value)


def _range(value: Any, where: str) -> Range:
    if not isinstance(value, Mapping):
        raise RequirementError(where, '应为 {"min": …, "max": …}', f'must be an object {{"min": …, "max": …}}, got {value!r}')
    unknown = set(value) - {"min", "max"}
    if unknown:
        raise RequirementError(f"{where}.{sorted(unknown)[0]}", "未知字段，只允许 min、max", "unknown key, expected min and/or max")
    lo = _number(value["min"], f"{where}.min") if value.get("min") is not None else None
    hi = _number(value["max"], f"{where}.max") if value.get("max") is not None else None
    if lo is None and hi is None:
        raise RequirementError(where, "至少给出 min 或 max", "give min and/or max")
    if lo is not None and hi is not None and lo > hi:
        raise RequirementError(where, f"min {_num(lo)} 大于 max {_num(hi)}", f"min {_num(lo)} is greater than max {_num(hi)}")
    return Range(lo, hi)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RequirementError(where, "应为非空文本", "must be a non-empty string")
    return value.strip()


def _land_use(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise RequirementError("land_use", "不能为空列表", "must not be an empty list")
    codes: list[str] = []
    for i, item in enumerate(items):
        code = str(item).strip() if isinstance(item, str | int) and not isinstance(item, bool) else None
        if code == "1001":  # 工业用地 as a whole
            codes.extend(LAND_CLASSES)
        elif code in LAND_CLASSES:
            codes.append(code)
        else:
            raise RequirementError(
                f"land_use[{i}]",
                f"应为工业用地代码 1001/100101/100102/100103，得到 {item!r}",
                f"must be an industrial land-use code 1001/100101/100102/100103, got {item!r}",
            )
    return tuple(dict.fromkeys(codes))


def _near(value: Any) -> tuple[NearPoint, ...]:
    if not isinstance(value, list):
        raise RequirementError("near", "应为列表", "must be a list of points")
    points = []
    for i, item in enumerate(value):
        where = f"near[{i}]"
        if not isinstance(item, Mapping):
            raise RequirementError(where, '应为 {"name", "lon", "lat", "max_km"}', 'must be an object {"name", "lon", "lat", "max_km"}')
        unknown = set(item) - {"name", "lon", "lat", "max_km"}
        if unknown:
            raise RequirementError(f"{where}.{sorted(unknown)[0]}", "未知字段", "unknown key (expected name, lon, lat, max_km)")
        for key in ("lon", "lat", "max_km"):
            if item.get(key) is None:
                raise RequirementError(f"{where}.{key}", "缺少此字段", "is required")
        lon = float(item["lon"]) if isinstance(item["lon"], int | float) and not isinstance(item["lon"], bool) else None
        lat = float(item["lat"]) if isinstance(item["lat"], int | float) and not isinstance(item["lat"], bool) else None
        if lon is None or not -180 <= lon <= 180:
            raise RequirementError(f"{where}.lon", f"应为 -180 至 180 的经度（CGCS2000），得到 {item['lon']!r}", f"must be a longitude in -180..180 (CGCS2000), got {item['lon']!r}")
        if lat is None or not -90 <= lat <= 90:
            raise RequirementError(f"{where}.lat", f"应为 -90 至 90 的纬度（CGCS2000），得到 {item['lat']!r}", f"must be a latitude in -90..90 (CGCS2000), got {item['lat']!r}")
        max_km = _number(item["max_km"], f"{where}.max_km", positive=True)
        name = _text(item["name"], f"{where}.name") if item.get("name") is not None else f"点{i + 1}"
        points.append(NearPoint(name, lon, lat, max_km))
    return tuple(points)


def _factory(value: Any) -> FactorySpec:
    if not isinstance(value, Mapping):
        raise RequirementError("factory", "应为对象", "must be an object (factory space wanted)")
    unknown = set(value) - _FACTORY_KEYS
    if unknown:
        raise RequirementError(f"factory.{sorted(unknown)[0]}", "未知字段", f"unknown key (expected {', '.join(sorted(_FACTORY_KEYS))})")
    area = _range(value["floor_area_m2"], "factory.floor_area_m2") if value.get("floor_area_m2") is not None else None
    rent = value.get("max_rent_yuan_m2_month")
    attrs = tuple((k, _range(value[k], f"factory.{k}")) for k in FACTORY_ATTRS if value.get(k) is not None)
    return FactorySpec(area, _number(rent, "factory.max_rent_yuan_m2_month") if rent is not None else None, attrs)


def parse_requirement(data: Mapping[str, Any] | Requirement) -> Requirement:
    """A checked :class:`Requirement`; :class:`RequirementError` names the first bad field and why."""
    if isinstance(data, Requirement):
        return data
    if not isinstance(data, Mapping):
        raise RequirementError("requirement", f"应为 JSON 对象，得到 {type(data).__name__}", f"must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - _REQUIREMENT_KEYS - _DESCRIPTIVE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RequirementError(key, "未知字段（拼写错误会让条件被忽略）", f"unknown field (a misspelt constraint would be ignored); expected {', '.join(sorted(_REQUIREMENT_KEYS))}")
    if data.get("investor") is None:
        raise RequirementError("investor", "缺少投资方名称", "is required")
    investor = _text(data["investor"], "investor")
    industry = _text(data["industry"], "industry") if data.get("industry") is not None else None
    land_use = _land_use(data["land_use"]) if data.get("land_use") is not None else None
    area = _range(data["land_area_mu"], "land_area_mu") if data.get("land_area_mu") is not None else None
    price = data.get("max_price_wan_per_mu")
    max_price = _number(price, "max_price_wan_per_mu") if price is not None else None
    factory = _factory(data["factory"]) if data.get("factory") is not None else None
    near = _near(data["near"]) if data.get("near") is not None else ()

    weights = dict(DEFAULT_WEIGHTS)
    named: list[str] = []
    if data.get("weights") is not None:
        if not isinstance(data["weights"], Mapping):
            raise RequirementError("weights", "应为对象，如 {\"price\": 0.3}", 'must be an object such as {"price": 0.3}')
        for key, w in data["weights"].items():
            if key not in CRITERIA:
                raise RequirementError(f"weights.{key}", "未知评分项", f"unknown criterion; expected one of {', '.join(CRITERIA)}")
            weights[key] = _number(w, f"weights.{key}")
            named.append(key)
        if not any(weights.values()):
            raise RequirementError("weights", "权重不能全为 0", "weights must not all be 0")

    rule = industry_class(industry)
    allowed: tuple[str, ...] | None = None
    if rule is not None and land_use is not None:
        allowed = tuple(c for c in land_use if c in rule.allowed)
        if not allowed:
            raise RequirementError(
                "land_use",
                f"{'/'.join(land_use)} 不适用于「{industry}」（只可用 {'/'.join(rule.allowed)}）",
                f"{'/'.join(land_use)} is not allowed for {industry!r} (only {'/'.join(rule.allowed)})",
            )
    elif rule is not None:
        allowed = rule.allowed
    elif land_use is not None:
        allowed = land_use
    return Requirement(investor, industry, land_use, area, max_price, factory, near, weights, tuple(named), rule, allowed)


# ---------------------------------------------------------------------------------------------
# Site arrays, prepared once


def gauss_kruger_epsg(lon: float) -> int:
    """The CGCS2000 3-degree Gauss-Kruger EPSG code (no zone prefix) whose central meridian is nearest ``lon``."""
    cm = min(max(round(lon / 3.0) * 3, 75), 135)
    return 4534 + (cm - 75) // 3


def readiness_connections(text: Any) -> float:
    """N of "N通一平" (七通一平 → 7); NaN when not recorded or not of that form."""
    if not isinstance(text, str):
        return math.nan
    m = _READINESS_RE.search(text)
    if not m:
        return math.nan
    token = m.group(1)
    return float(token) if token.isdigit() else float(_NUMERALS[token])


def _readiness_n(texts: np.ndarray) -> np.ndarray:
    """:func:`readiness_connections` over an array of texts, vectorised through pandas."""
    token = pd.Series(texts, dtype=object).astype("string").str.extract(_READINESS_RE, expand=False)
    numeral = token.map(_NUMERALS, na_action="ignore")
    digits = pd.to_numeric(token.where(token.str.isdigit().fillna(False)), errors="coerce").astype(float)
    return pd.to_numeric(numeral, errors="coerce").astype(float).fillna(digits).to_numpy(dtype=float, na_value=np.nan)


@dataclass
class KindArrays:
    """Per-site arrays of one kind (``idle`` or ``factory``); lengths all ``n``. Missing numbers are NaN."""

    kind: str
    n: int
    site_id: np.ndarray
    tie: np.ndarray  # rank of site_id: the tie-break order
    name: np.ndarray
    park: np.ndarray
    status: np.ndarray
    project_ids: np.ndarray
    x_m: np.ndarray  # projected centroid, metres (Gauss-Kruger)
    y_m: np.ndarray
    east_m: np.ndarray  # x_m − false easting: the offset from the central meridian, metres
    east2_m2: np.ndarray  # its square, for the scale-factor correction
    lon: np.ndarray  # centroid, CGCS2000 degrees
    lat: np.ndarray
    available: np.ndarray  # bool
    unavailable: np.ndarray  # its negation: the status check, precomputed
    size: np.ndarray  # what the area check uses: 亩 (land) or m² (factories)
    size_is_remaining: np.ndarray  # bool: size is what is left of a partly taken site
    land_use: np.ndarray  # object: class code or None
    land_class: np.ndarray  # int8: 1, 2, 3 for 100101/100102/100103, 0 otherwise
    price: np.ndarray  # 万元/亩 (land) or 元/m²/月 (factories)
    price_ref: float
    readiness_text: np.ndarray
    readiness_n: np.ndarray
    num: dict[str, np.ndarray]  # plot_ratio_max, floor_load_kn_m2, clear_height_m, power_kva, floors
    num_ref: dict[str, float]  # 95th percentile of each


@dataclass
class SiteIndex:
    """The land status frame as arrays, prepared once for many requirements."""

    epsg: int
    idle: KindArrays
    factory: KindArrays
    _transformer: Any = None

    def kind(self, kind: str) -> KindArrays:
        return self.factory if kind == "factory" else self.idle

    def project(self, lon: Sequence[float], lat: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """CGCS2000 lon/lat (degrees) → Gauss-Kruger x/y (metres)."""
        if self._transformer is None:
            from pyproj import Transformer

            self._transformer = Transformer.from_crs(4490, self.epsg, always_xy=True)
        x, y = self._transformer.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)


def _col(frame: pd.DataFrame, name: str, dtype: str = "float") -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan) if dtype == "float" else np.full(len(frame), None, dtype=object)
    if dtype == "float":
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return _none_for_na(frame[name].astype(object).to_numpy())


def _none_for_na(values: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=object)
    out[pd.isna(out)] = None
    return out


def _p95(values: np.ndarray) -> float:
    finite = values[np.isfinite(values) & (values > 0)]
    return float(np.percentile(finite, 95)) if len(finite) else math.nan


def _kind_arrays(kind: str, frame: pd.DataFrame, x: np.ndarray, y: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> KindArrays:
    n = len(frame)
    site_id = _col(frame, "site_id", "object").astype(str) if n else np.array([], dtype=object)
    tie = np.empty(n, dtype=np.int64)
    tie[np.argsort(site_id, kind="stable")] = np.arange(n)
    status = _col(frame, "status", "object")
    available = np.isin(status, AVAILABLE_STATUSES)
    if kind == "factory":
        whole = _col(frame, "floor_area_m2")
        left = _col(frame, "vacant_area_m2")
        price = _col(frame, "rent_yuan_m2_month")
    else:
        whole = _col(frame, "area_mu")
        left = _col(frame, "remaining_area_mu")
        price = _col(frame, "price_wan_per_mu")
    # An available site is measured by what is left of it (whole when not recorded); a taken one by
    # its whole area, so it misses on availability alone.
    left = np.where(np.isnan(left), whole, left)
    available &= ~(left <= 0)
    size = np.where(available, left, whole)
    codes = pd.Series(_col(frame, "land_use", "object"), dtype=object)
    # codes may arrive as numbers from a spreadsheet-made file: 100102.0 is 100102
    land_use = codes.where(codes.isna(), codes.astype(str).str.strip().str.replace(r"\.0+$", "", regex=True)).to_numpy(dtype=object)
    land_use = _none_for_na(land_use)
    # class 1/2/3 for 100101/100102/100103, 0 for anything else: requirements test a small lookup table
    land_class = pd.Series(land_use, dtype=object).map({c: i + 1 for i, c in enumerate(LAND_CLASSES)})
    readiness = _col(frame, "readiness", "object")
    num = {c: _col(frame, c) for c in ("plot_ratio_max", "floor_load_kn_m2", "clear_height_m", "power_kva", "floors")}
    project_ids = _col(frame, "project_ids", "object")
    return KindArrays(
        kind=kind,
        n=n,
        site_id=site_id,
        tie=tie,
        name=_col(frame, "name", "object"),
        park=_col(frame, "park", "object"),
        status=status,
        project_ids=project_ids,
        x_m=x,
        y_m=y,
        east_m=x - FALSE_EASTING_M,
        east2_m2=(x - FALSE_EASTING_M) ** 2,
        lon=lon,
        lat=lat,
        available=available,
        unavailable=~available,
        size=size,
        size_is_remaining=available & (left < whole),
        land_use=land_use,
        price=price,
        price_ref=_p95(price),
        readiness_text=readiness,
        land_class=land_class.fillna(0).to_numpy(dtype=np.int8),
        readiness_n=_readiness_n(readiness),
        num=num,
        num_ref={c: _p95(v) for c, v in num.items()},
    )


def prepare_sites(sites: Any) -> SiteIndex:
    """Per-site arrays of a land status frame (a GeoDataFrame with a CRS; EPSG:4490 expected).

    Centroids are taken in the Gauss-Kruger zone of the sites' median longitude (see the module
    docstring); ``lon``/``lat`` are those centroids back in CGCS2000 degrees.
    """
    if isinstance(sites, SiteIndex):
        return sites
    from pyproj import Transformer

    if getattr(sites, "crs", None) is None:
        raise ValueError("sites: the land status frame has no CRS (expected EPSG:4490, CGCS2000)")
    missing = {"site_id", "kind", "status", "geometry"} - set(sites.columns)
    if missing:
        raise ValueError(f"sites: the land status frame lacks the columns {', '.join(sorted(missing))}")
    geo = sites.to_crs(4490) if sites.crs.to_epsg() != 4490 else sites
    if len(geo):
        bounds = geo.geometry.bounds
        median_lon = float(np.nanmedian((bounds["minx"].to_numpy() + bounds["maxx"].to_numpy()) / 2))
        epsg = gauss_kruger_epsg(median_lon if math.isfinite(median_lon) else 105.0)
    else:
        epsg = gauss_kruger_epsg(105.0)
    projected = geo.geometry.to_crs(epsg)
    centroid = projected.centroid
    x = centroid.x.to_numpy(dtype=float, na_value=np.nan)
    y = centroid.y.to_numpy(dtype=float, na_value=np.nan)
    back = Transformer.from_crs(epsg, 4490, always_xy=True)
    lon, lat = back.transform(x, y)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    kinds = geo["kind"].astype(str).to_numpy()
    parts = {}
    for kind in ("idle", "factory"):
        sel = np.flatnonzero(kinds == kind)
        parts[kind] = _kind_arrays(kind, pd.DataFrame(geo.iloc[sel].drop(columns="geometry")), x[sel], y[sel], lon[sel], lat[sel])
    return SiteIndex(epsg, parts["idle"], parts["factory"])


# ---------------------------------------------------------------------------------------------
# Matching


@dataclass
class _Check:
    key: str  # status, area, land_use, price, near, floor_load, clear_height, power, floors
    fail: np.ndarray  # bool, per site
    arg: Any = None  # the near point index, or the factory attribute key


def _outside(values: np.ndarray, rng: Range) -> np.ndarray:
    """True where a value is outside the range or NaN (comparisons with NaN are False)."""
    if rng.min is not None and rng.max is not None:
        ok = values >= rng.min
        ok &= values <= rng.max
    elif rng.min is not None:
        ok = values >= rng.min
    else:
        ok = values <= rng.max
    return np.logical_not(ok, out=ok)


def _unit(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] with NaN → 0 (fmax/fmin drop NaN), in two passes."""
    clipped: np.ndarray = np.fmin(np.fmax(x, 0.0), 1.0)
    return clipped


def _area_fit(v: np.ndarray, rng: Range) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        if rng.min is not None and rng.max is not None:
            half = (rng.max - rng.min) / 2
            mid = (rng.max + rng.min) / 2
            s = 1 - 0.5 * np.abs(v - mid) / half if half > 0 else np.where(v == mid, 1.0, 0.0)
        else:
            b = rng.min if rng.min is not None else rng.max
            assert b is not None
            s = np.minimum(v, b) / np.maximum(v, b)
    return _unit(s)


def _more_is_better(v: np.ndarray, ref: float) -> np.ndarray:
    if not math.isfinite(ref) or ref <= 0:
        return np.where(np.isfinite(v), 1.0, 0.0)
    return _unit(v / ref)


class _Evaluation:
    """One requirement against one kind's arrays: failed-constraint counts and scores."""

    def __init__(self, req: Requirement, idx: SiteIndex) -> None:
        self.req = req
        arr = self.arr = idx.kind(req.kind)
        checks: list[_Check] = [_Check("status", arr.unavailable)]
        spec = req.factory
        area_rng = spec.floor_area_m2 if spec is not None else req.land_area_mu
        if area_rng is not None:
            checks.append(_Check("area", _outside(arr.size, area_rng)))
        if spec is None:
            if req.allowed_classes is not None:
                allowed = np.zeros(len(LAND_CLASSES) + 1, dtype=bool)
                allowed[[LAND_CLASSES.index(c) + 1 for c in req.allowed_classes]] = True
                checks.append(_Check("land_use", ~allowed[arr.land_class]))
            if req.max_price_wan_per_mu is not None:
                checks.append(_Check("price", ~(arr.price <= req.max_price_wan_per_mu)))
        else:
            if spec.max_rent_yuan_m2_month is not None:
                checks.append(_Check("price", ~(arr.price <= spec.max_rent_yuan_m2_month)))
            for key, rng in spec.attrs:
                checks.append(_Check(FACTORY_ATTRS[key][1], _outside(arr.num[FACTORY_ATTRS[key][0]], rng), key))
        self.distance_km: list[np.ndarray] = []
        if req.near:
            px, py = idx.project([p.lon for p in req.near], [p.lat for p in req.near])
            for i, p in enumerate(req.near):
                # in-place passes over the arrays: this is the hot loop of a batch
                d = arr.x_m - px[i]
                d *= d
                dy = arr.y_m - py[i]
                dy *= dy
                d += dy
                np.sqrt(d, out=d)
                # grid → ground: divide by the mean Gauss-Kruger scale factor along the line,
                # 1 + (e1² + e1·e2 + e2²) / 6R²
                e = px[i] - FALSE_EASTING_M
                k = arr.east_m * e
                k += arr.east2_m2
                k += e * e + SIX_R2_M2
                d /= k
                d *= SIX_R2_M2 / 1000.0
                self.distance_km.append(d)
                checks.append(_Check("near", ~(d <= p.max_km), i))
        self.checks = checks
        fails = checks[0].fail.astype(np.uint8)  # the status check is always first
        for c in checks[1:]:
            fails += c.fail
        self.fails = fails
        self.candidates = np.flatnonzero(fails <= 1)
        self.weights = self._weights()
        self.scores = self._score(self.candidates)

    def _weights(self) -> dict[str, float]:
        req, arr = self.req, self.arr
        spec = req.factory
        area_rng = spec.floor_area_m2 if spec is not None else req.land_area_mu
        applies = {
            "area_fit": area_rng is not None and area_rng.wishes,
            "distance": bool(req.near),
            # without a cap, price is scored against the pool; a pool without prices cannot rank
            "price": self._price_cap() is not None or math.isfinite(arr.price_ref),
            "readiness": arr.kind == "idle" or "readiness" in req.named_weights,
            "plot_ratio": arr.kind == "idle" and "plot_ratio" in req.named_weights,
        }
        for crit in ("floor_load", "clear_height", "power"):
            applies[crit] = arr.kind == "factory" and crit in req.named_weights
        raw = {k: w for k, w in req.weights.items() if applies.get(k) and w > 0}
        total = sum(raw.values())
        return {k: w / total for k, w in raw.items()} if total else {}

    def _price_cap(self) -> float | None:
        return self.req.factory.max_rent_yuan_m2_month if self.req.factory is not None else self.req.max_price_wan_per_mu

    def criterion_scores(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Per criterion, the scores in [0, 1] of ``rows`` (distance: the mean over the points)."""
        req, arr = self.req, self.arr
        out: dict[str, np.ndarray] = {}
        for crit in self.weights:
            if crit == "area_fit":
                rng = req.factory.floor_area_m2 if req.factory is not None else req.land_area_mu
                assert rng is not None
                out[crit] = _area_fit(arr.size[rows], rng)
            elif crit == "distance":
                total = np.zeros(len(rows))
                for d, p in zip(self.distance_km, req.near, strict=True):
                    total += _unit(1 - (0.5 / p.max_km) * d[rows])
                out[crit] = total / len(req.near)
            elif crit == "price":
                cap = self._price_cap()
                ref = cap if cap else arr.price_ref
                p = arr.price[rows]
                if ref and math.isfinite(ref):
                    out[crit] = _unit(1 - (0.5 / ref) * p)
                else:  # every price is 0 or unknown: free land is best, unknown worst
                    out[crit] = np.where(p == 0, 1.0, 0.0)
            elif crit == "readiness":
                out[crit] = _unit(arr.readiness_n[rows] / 7.0)
            else:
                column = _EXTRA_COLUMN[crit]
                ref = arr.num_ref[column]
                if req.factory is not None and crit in _EXTRA_REQ_KEY:
                    rng = dict(req.factory.attrs).get(_EXTRA_REQ_KEY[crit])
                    if rng is not None and rng.min:
                        ref = 2 * rng.min
                out[crit] = _more_is_better(arr.num[column][rows], ref)
        return out

    def _score(self, rows: np.ndarray) -> np.ndarray:
        total = np.zeros(len(rows))
        for crit, s in self.criterion_scores(rows).items():
            total += self.weights[crit] * s
        return np.round(100 * total, TIE_DECIMALS)

    def best(self, failed: int, k: int) -> np.ndarray:
        """Site rows failing exactly ``failed`` constraints, best ``k`` by score then site_id."""
        pick = self.fails[self.candidates] == failed
        rows: np.ndarray = self.candidates[pick]
        scores: np.ndarray = self.scores[pick]
        if k <= 0 or not len(rows):
            return rows[:0]
        if len(rows) > k:  # partial selection, keeping every row tied with the k-th
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= kth
            rows, scores = rows[keep], scores[keep]
        order = np.lexsort((self.arr.tie[rows], -scores))[:k]
        best_rows: np.ndarray = rows[order]
        return best_rows

    def score_of(self, row: int) -> float:
        pos = np.searchsorted(self.candidates, row)
        return float(self.scores[pos])


# ---------------------------------------------------------------------------------------------
# Reasons


def _num(x: float | None, decimals: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".")


def _class_text(codes: Iterable[str], zh: bool) -> str:
    if zh:
        return "、".join(f"{c}（{LAND_USE_LABELS[c][0]}）" for c in codes)
    return ", ".join(f"{c} ({LAND_USE_LABELS[c][1]})" for c in codes)


def status_reason(st: Any, projects: Iterable[Any]) -> tuple[str, str]:
    """Why a site that is not available fails ``status`` (zh, en), naming the ``projects`` on it.

    :func:`public_match` words it again with no projects for a public page.
    """
    pids = ", ".join(str(p) for p in projects)
    by_zh = f"（项目 {pids}）" if pids else ""
    by_en = f" (project {pids})" if pids else ""
    if st == "in_production":
        return f"已投产使用{by_zh}，不可供应", f"in production{by_en}, not available"
    if st in ("taken", "partly_taken"):
        return f"已被落地项目占用{by_zh}，不可供应", f"already taken by a landed project{by_en}, not available"
    return f"状态 {st or '未登记'}，不可供应", f"status {st or 'not recorded'}, not available"


class _Reasons:
    """Values and bilingual reasons for one row and one constraint or criterion."""

    def __init__(self, ev: _Evaluation) -> None:
        self.ev = ev
        self.req = ev.req
        self.arr = ev.arr
        self.factory = ev.req.factory is not None

    def status(self, i: int) -> tuple[Any, str, str]:
        a = self.arr
        st = a.status[i]
        if a.available[i]:
            if self.factory:
                return st, f"可供应，空置 {_num(a.size[i])} 平方米", f"available, {_num(a.size[i])} m² vacant"
            if a.size_is_remaining[i]:
                return st, f"部分占用，剩余 {_num(a.size[i])} 亩可供", f"partly taken, {_num(a.size[i])} mu still free"
            return st, "可供应", "available"
        projects = a.project_ids[i]
        return st, *status_reason(st, projects if isinstance(projects, list | tuple | np.ndarray) else ())

    def area(self, i: int) -> tuple[Any, str, str]:
        a, spec = self.arr, self.req.factory
        rng = spec.floor_area_m2 if spec is not None else self.req.land_area_mu
        assert rng is not None
        v = a.size[i]
        if self.factory:
            what_zh, what_en, unit_zh, unit_en = "空置面积", "vacant floor area", "平方米", "m²"
        else:
            left = a.size_is_remaining[i]
            what_zh, what_en, unit_zh, unit_en = ("剩余面积" if left else "面积"), ("remaining area" if left else "area"), "亩", "mu"
        if not math.isfinite(v):
            return None, f"{what_zh}未登记，要求 {rng.text(unit_zh)}", f"{what_en} not recorded, {rng.text(unit_en)} wanted"
        if rng.min is not None and v < rng.min:
            return v, f"{what_zh} {_num(v)} {unit_zh}，不足 {rng.text(unit_zh)}", f"{what_en} {_num(v)} {unit_en}, below {rng.text(unit_en)}"
        if rng.max is not None and v > rng.max:
            return v, f"{what_zh} {_num(v)} {unit_zh}，超过 {rng.text(unit_zh)}", f"{what_en} {_num(v)} {unit_en}, above {rng.text(unit_en)}"
        fits = "within" if rng.min is not None and rng.max is not None else "meets"
        return v, f"{what_zh} {_num(v)} {unit_zh}，满足 {rng.text(unit_zh)}", f"{what_en} {_num(v)} {unit_en}, {fits} {rng.text(unit_en)}"

    def land_use(self, i: int) -> tuple[Any, str, str]:
        req = self.req
        code = self.arr.land_use[i]
        allowed = req.allowed_classes or ()
        rule = req.industry_rule
        basis_zh = f"「{rule.industry}」可用" if rule is not None else "投资方要求"
        basis_en = f"allowed for {rule.industry!r}" if rule is not None else "asked by the investor"
        if req.land_use is not None and rule is not None:
            basis_zh, basis_en = f"「{rule.industry}」可用且投资方要求", f"allowed for {rule.industry!r} and asked by the investor"
        allowed_zh, allowed_en = _class_text(allowed, True), _class_text(allowed, False)
        if code is None:
            return None, f"用地类型未登记，需 {allowed_zh}", f"land use not recorded, {allowed_en} needed"
        here_zh = _class_text([code], True) if code in LAND_USE_LABELS else code
        here_en = _class_text([code], False) if code in LAND_USE_LABELS else code
        if code in allowed:
            return code, f"用地类型 {here_zh}，{basis_zh}", f"land use {here_en}, {basis_en}"
        return code, f"用地类型 {here_zh}，不符合：{basis_zh}的只有 {allowed_zh}", f"land use {here_en}; only {allowed_en} {basis_en}"

    def price(self, i: int) -> tuple[Any, str, str]:
        v = self.arr.price[i]
        if self.factory:
            cap = self.req.factory.max_rent_yuan_m2_month if self.req.factory else None
            what_zh, what_en, unit_zh, unit_en = "租金", "rent", "元/平方米·月", "yuan/m²/month"
        else:
            cap = self.req.max_price_wan_per_mu
            what_zh, what_en, unit_zh, unit_en = "地价", "land price", "万元/亩", "× 10k yuan/mu"
        if not math.isfinite(v):
            return None, f"{what_zh}未登记", f"{what_en} not recorded"
        if cap is None:
            return v, f"{what_zh} {_num(v)} {unit_zh}", f"{what_en} {_num(v)} {unit_en}"
        if v <= cap:
            return v, f"{what_zh} {_num(v)} {unit_zh}，不高于上限 {_num(cap)} {unit_zh}", f"{what_en} {_num(v)} {unit_en}, within the cap of {_num(cap)}"
        return v, f"{what_zh} {_num(v)} {unit_zh}，超过上限 {_num(cap)} {unit_zh}", f"{what_en} {_num(v)} {unit_en}, above the cap of {_num(cap)}"

    def near(self, i: int, k: int) -> tuple[Any, str, str]:
        p = self.req.near[k]
        d = self.ev.distance_km[k][i]
        if not math.isfinite(d):
            return None, f"位置未登记，无法计算到{p.name}的距离", f"location not recorded, no distance to {p.name}"
        dv = round(float(d), 2)
        if d <= p.max_km:
            return dv, f"距{p.name} {d:.1f} 公里，在 {_num(p.max_km)} 公里以内", f"{d:.1f} km from {p.name}, within {_num(p.max_km)} km"
        return dv, f"距{p.name} {d:.1f} 公里，超过 {_num(p.max_km)} 公里", f"{d:.1f} km from {p.name}, beyond {_num(p.max_km)} km"

    def readiness(self, i: int) -> tuple[Any, str, str]:
        text = self.arr.readiness_text[i]
        n = self.arr.readiness_n[i]
        if text is None:
            return None, "配套（七通一平）未登记", "site readiness not recorded"
        if not math.isfinite(n):
            return text, f"配套：{text}", f"site readiness: {text}"
        return text, f"配套{text}（{n:.0f}/7）", f"site readiness {text} ({n:.0f} of 7 connections)"

    def attr(self, i: int, crit: str, rng: Range | None) -> tuple[Any, str, str]:
        if crit == "plot_ratio":
            v = self.arr.num["plot_ratio_max"][i]
            if not math.isfinite(v):
                return None, "容积率上限未登记", "plot ratio limit not recorded"
            return v, f"容积率上限 {_num(v)}", f"plot ratio up to {_num(v)}"
        key = next(k for k, spec in FACTORY_ATTRS.items() if spec[1] == crit)
        column, _, zh, en, unit_zh, unit_en = FACTORY_ATTRS[key]
        v = self.arr.num[column][i]
        if not math.isfinite(v):
            return None, f"{zh}未登记", f"{en} not recorded"
        if rng is None:
            return v, f"{zh} {_num(v)} {unit_zh}", f"{en} {_num(v)} {unit_en}"
        if rng.min is not None and v < rng.min:
            return v, f"{zh} {_num(v)} {unit_zh}，不足 {rng.text(unit_zh)}", f"{en} {_num(v)} {unit_en}, below {rng.text(unit_en)}"
        if rng.max is not None and v > rng.max:
            return v, f"{zh} {_num(v)} {unit_zh}，超过 {rng.text(unit_zh)}", f"{en} {_num(v)} {unit_en}, above {rng.text(unit_en)}"
        return v, f"{zh} {_num(v)} {unit_zh}，满足 {rng.text(unit_zh)}", f"{en} {_num(v)} {unit_en}, meets {rng.text(unit_en)}"

    def check(self, i: int, c: _Check) -> tuple[Any, str, str]:
        if c.key == "near":
            return self.near(i, c.arg)
        if c.key in ("status", "area", "land_use", "price"):
            reason: Callable[[int], tuple[Any, str, str]] = getattr(self, c.key)
            return reason(i)
        assert self.req.factory is not None
        return self.attr(i, c.key, dict(self.req.factory.attrs)[c.arg])


def _entry(criterion: str, value: Any, score: float, weight: float, zh: str, en: str, **extra: Any) -> dict[str, Any]:
    if isinstance(value, float | np.floating):
        value = round(float(value), 4)
    return {"criterion": criterion, "value": value, "score": round(float(score), 4), "weight": round(weight, 4), "reason_zh": zh, "reason_en": en, **extra}


def _site_head(arr: KindArrays, i: int) -> dict[str, Any]:
    return {
        "site_id": str(arr.site_id[i]),
        "kind": arr.kind,
        "name": arr.name[i],
        "park": arr.park[i],
    }


def _lonlat(arr: KindArrays, i: int) -> dict[str, float | None]:
    lon, lat = arr.lon[i], arr.lat[i]
    return {"lon": round(float(lon), 6) if math.isfinite(lon) else None, "lat": round(float(lat), 6) if math.isfinite(lat) else None}


def _result_row(ev: _Evaluation, reasons: _Reasons, i: int, rank: int, crit_scores: dict[str, float]) -> dict[str, Any]:
    arr, req = ev.arr, ev.req
    criteria: list[dict[str, Any]] = []
    checked_attrs: set[str] = set()
    for c in ev.checks:
        if c.key == "near":
            continue  # one entry per point below, with the distance score
        value, zh, en = reasons.check(i, c)
        crit = {"area": "area_fit"}.get(c.key, c.key)
        w = ev.weights.get(crit, 0.0)
        criteria.append(_entry(crit if w else c.key, value, crit_scores.get(crit, 1.0), w, zh, en))
        checked_attrs.add(crit)
    w_dist = ev.weights.get("distance", 0.0)
    for k, p in enumerate(req.near):
        value, zh, en = reasons.near(i, k)
        d = ev.distance_km[k][i]
        s = float(np.clip(1 - 0.5 * d / p.max_km, 0, 1)) if math.isfinite(d) else 0.0
        criteria.append(_entry("distance", value, s, w_dist / len(req.near), zh, en, target=p.name, max_km=p.max_km))
    for crit, w in ev.weights.items():
        if crit in checked_attrs or crit == "distance":
            continue
        if crit == "price":
            value, zh, en = reasons.price(i)
        elif crit == "readiness":
            value, zh, en = reasons.readiness(i)
        else:
            value, zh, en = reasons.attr(i, crit, None)
        criteria.append(_entry(crit, value, crit_scores[crit], w, zh, en))
    return {"rank": rank, **_site_head(arr, i), "score": round(ev.score_of(i), 2), "status": arr.status[i], **_lonlat(arr, i), "criteria": criteria}


def _miss_row(ev: _Evaluation, reasons: _Reasons, i: int) -> dict[str, Any]:
    c = next(c for c in ev.checks if c.fail[i])
    value, zh, en = reasons.check(i, c)
    row = {**_site_head(ev.arr, i), "failed": c.key, "value": value, "reason_zh": zh, "reason_en": en}
    if c.key == "near":
        row["target"] = ev.req.near[c.arg].name
    return {**row, "score": round(ev.score_of(i), 2), **_lonlat(ev.arr, i)}


def _notes(req: Requirement) -> list[dict[str, str]]:
    notes = []
    if req.industry and req.industry_rule is None:
        notes.append({
            "zh": f"行业「{req.industry}」不在用地分类表中，未按行业限制用地类型",
            "en": f"industry {req.industry!r} is not in the land-class table: land class not restricted by industry",
        })
    kind_criteria = FACTORY_CRITERIA if req.factory is not None else LAND_CRITERIA
    for key in req.named_weights:
        if key not in kind_criteria:
            what_zh, what_en = ("厂房", "factory") if req.factory is not None else ("土地", "land")
            notes.append({"zh": f"权重 {key} 不适用于{what_zh}需求，已忽略", "en": f"weight {key!r} does not apply to a {what_en} requirement: ignored"})
    if req.factory is not None:
        if req.land_area_mu is not None or req.max_price_wan_per_mu is not None or req.land_use is not None:
            notes.append({"zh": "厂房需求：土地面积、地价和用地类型条件不适用", "en": "factory requirement: land area, land price and land-use conditions do not apply"})
        if req.industry_rule is not None and req.industry_rule.level == 3:
            notes.append({
                "zh": f"「{req.industry}」属三类工业，标准厂房通常不接纳，请核实环评要求",
                "en": f"{req.industry!r} is a class-3 industry: standard factories usually do not accept it; check the environmental permit",
            })
    return notes


def match(requirement: Mapping[str, Any] | Requirement, sites: Any, *, top: int = 10, misses: int | None = None) -> dict[str, Any]:
    """The best ``top`` sites for ``requirement`` and the closest misses (``misses``, default ``top``).

    ``sites`` is the land status frame (GeoDataFrame, EPSG:4490) or a :class:`SiteIndex` from
    :func:`prepare_sites` (prepare once when matching many requirements). ``as_of`` is left
    ``None`` for the caller, who knows the date of the frame.
    """
    if top < 1:
        raise ValueError(f"top must be ≥ 1, got {top}")
    req = parse_requirement(requirement)
    idx = prepare_sites(sites)
    ev = _Evaluation(req, idx)
    reasons = _Reasons(ev)
    best = ev.best(0, top)
    near_misses = ev.best(1, top if misses is None else misses)
    best_scores = ev.criterion_scores(best)  # one vectorised pass for the reported rows
    return {
        "investor": req.investor,
        "industry": req.industry,
        "kind": req.kind,
        "as_of": None,
        "candidates": ev.arr.n,
        "matched": int(np.count_nonzero(ev.fails == 0)),
        "weights": {k: round(w, 4) for k, w in ev.weights.items()},
        "allowed_land_use": list(req.allowed_classes) if req.allowed_classes is not None and req.factory is None else None,
        "distance": f"centroid to point, km, EPSG:{idx.epsg} (CGCS2000 Gauss-Kruger)",
        "notes": _notes(req),
        "results": [_result_row(ev, reasons, int(i), r + 1, {k: float(v[r]) for k, v in best_scores.items()}) for r, i in enumerate(best)],
        "closest_misses": [_miss_row(ev, reasons, int(i)) for i in near_misses],
    }


def match_many(requirements: Iterable[Mapping[str, Any] | Requirement], sites: Any, *, top: int = 10, misses: int | None = None) -> list[dict[str, Any]]:
    """:func:`match` for many requirements, preparing the site arrays once."""
    idx = prepare_sites(sites)
    return [match(r, idx, top=top, misses=misses) for r in requirements]


def public_match(result: Mapping[str, Any]) -> dict[str, Any]:
    """A match result as a public page may show it: no investor name, no project named in any reason.

    Only the ``status`` constraint of a site that is not available names projects (the ones
    occupying it): that is a closest miss's failed constraint (ranked sites are available), and
    its reason is worded again without them (:func:`status_reason`).
    """
    def row(r: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in r.items() if k != "project_ids"}
        if out.get("failed") == "status":
            out["reason_zh"], out["reason_en"] = status_reason(out.get("value"), ())
        return out

    public = {k: v for k, v in result.items() if k != "investor"}
    public["investor"] = None
    public["results"] = [row(r) for r in result.get("results") or []]
    public["closest_misses"] = [row(m) for m in result.get("closest_misses") or []]
    return public
