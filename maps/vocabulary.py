"""The maps' closed vocabularies (see ``events.choices``); the label language is ``events.choices.Lang``.

A module of its own, light to import: the CLI declares its options with these types when it starts,
and ``maps.render`` (folium, geopandas) is loaded only by the commands that draw.
"""

from __future__ import annotations

from enum import StrEnum


class Profile(StrEnum):
    """public: the sites on offer, public fields only; internal: everything, plus the pipeline map."""

    PUBLIC = "public"
    INTERNAL = "internal"


class Basemap(StrEnum):
    """none works offline; tianditu needs ``TIANDITU_KEY``; gaode shifts the overlay to GCJ-02."""

    NONE = "none"
    OSM = "osm"
    TIANDITU = "tianditu"
    GAODE = "gaode"
