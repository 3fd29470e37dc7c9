"""Investor requirements (DOMAIN.md's format) that fit the demo district."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from demo.district import POIS


def demo_requirements() -> dict[str, dict[str, Any]]:
    """Four investor requirements that fit the demo county (``demo.district``), by file stem.

    Land for a new-materials firm near the 平坝 exit, class-3 land for fine chemicals near 天龙,
    factory space for electronics, logistics land near 高峰 with distance weighted up.
    """
    poi = {name: (lon, lat) for name, _kind, lon, lat in POIS}

    def near(name: str, max_km: float) -> dict[str, Any]:
        return {"name": name, "lon": poi[name][0], "lat": poi[name][1], "max_km": max_km}

    return {
        "新材料": {"investor": "某新材料科技有限公司", "industry": "新材料", "land_use": ["100102"],
                 "land_area_mu": {"min": 30, "max": 120}, "max_price_wan_per_mu": 30, "near": [near("沪昆高速平坝出口", 8)]},
        "精细化工": {"investor": "某精细化工企业", "industry": "精细化工", "land_area_mu": {"min": 20, "max": 200},
                  "near": [near("沪昆高速天龙出口", 10)]},
        "电子信息厂房": {"investor": "某电子信息企业", "industry": "电子信息",
                    "factory": {"floor_area_m2": {"min": 2000}, "floor_load_kn_m2": {"min": 8}, "clear_height_m": {"min": 5}},
                    "near": [near("沪昆高速平坝出口", 12)]},
        "冷链物流": {"investor": "某冷链物流企业", "industry": "物流", "land_area_mu": {"min": 20, "max": 100},
                  "max_price_wan_per_mu": 25, "near": [near("贵黄高速高峰互通", 6)], "weights": {"distance": 0.4}},
    }


def write_demo_requirements(folder: Path) -> list[Path]:
    """Write :func:`demo_requirements` as ``NAME.json`` into ``folder``; the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, req in demo_requirements().items():
        path = folder / f"{stem}.json"
        path.write_text(json.dumps(req, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
