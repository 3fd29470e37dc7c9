"""The land domain, pure (no I/O): the vocabularies of sites and land, the land classes an industry
may use, a site's status from what projects took of it, and matching investors to sites."""
