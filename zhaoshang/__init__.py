"""zhaoshang: the command line that wires the layers (events, warehouse, ingestion, maps, assets)."""
