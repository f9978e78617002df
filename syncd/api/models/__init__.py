"""Request and response bodies as pydantic models, one module per resource.

Request models validate (`syncd.api.validation` reads bodies and queries into them);
every model also describes its body in `/openapi.json` (`syncd.api.openapi`), so what
is checked and what is documented are one definition.
"""
