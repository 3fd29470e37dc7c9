"""One table per vocabulary: the CLI, the maps and the matching reasons label codes from it alone."""

from __future__ import annotations

from events.model import STAGE_LABELS
from land.industry_land import LAND_CLASSES
from land.matching import AVAILABLE_STATUSES, _class_text
from land.vocabulary import LAND_USE_LABELS, ON_OFFER_STATUSES, SITE_STATUS_LABELS
from maps.promotion import ON_OFFER, _legend_sites
from zhaoshang.commands.ledger import TOTAL_LABELS


def test_the_promotion_legend_names_taken_sites_as_land_status_does() -> None:
    for lang, side in (("zh", 0), ("en", 1)):
        labels = [item["label"] for item in _legend_sites(lang, internal=True)["items"]]
        taken = f"{SITE_STATUS_LABELS['taken'][side]} / {SITE_STATUS_LABELS['in_production'][side]}"
        assert taken in labels
        assert [LAND_USE_LABELS[c][side] for c in LAND_CLASSES] == labels[: len(LAND_CLASSES)]


def test_land_classes_and_offer_statuses_come_from_the_vocabulary() -> None:
    assert tuple(LAND_USE_LABELS) == LAND_CLASSES
    assert _class_text(["100102"], True) == "100102（二类工业用地）"
    assert _class_text(["100101", "100103"], False) == f"100101 ({LAND_USE_LABELS['100101'][1]}), 100103 ({LAND_USE_LABELS['100103'][1]})"
    assert AVAILABLE_STATUSES == ON_OFFER == ON_OFFER_STATUSES
    assert set(ON_OFFER_STATUSES) <= set(SITE_STATUS_LABELS)


def test_ledger_totals_use_the_stage_labels() -> None:
    for stage in ("signed", "landed", "started", "produced", "cancelled"):
        assert TOTAL_LABELS[stage] == f"{STAGE_LABELS[stage][0]} {stage}"
