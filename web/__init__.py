"""The workspace (``zhaoshang serve``): server-rendered pages and a JSON API over the warehouse.

``web.app.create_app`` takes a :class:`web.config.WebConfig` (the entry point reads the settings
and the clock and passes them in); routes read the warehouse through ``warehouse``'s functions and
the read models, never through SQL of their own. Every asset is served by the app itself.
"""
