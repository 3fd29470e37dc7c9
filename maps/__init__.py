"""Folium maps for promotion events: promotion, pipeline and match maps, self-contained pages (see publish.py)."""
