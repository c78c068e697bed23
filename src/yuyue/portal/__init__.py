"""The patient's pages: mobile-first, server-rendered (Jinja2 + htmx), zh-CN by default."""
