"""The demo district: its land files, its project history, its ledgers and investor requirements.

Generated, seeded and reproducible; imported only by ``zhaoshang demo``, the tests and the
benchmarks, never by production code.
"""
