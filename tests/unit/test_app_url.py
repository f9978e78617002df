"""Where links (sign-in links, e-mail links) lead: the web app's address from settings."""

from __future__ import annotations

from syncd.auth.signin import app_url, sign_in_link
from syncd.settings import Settings


def test_links_lead_to_the_first_origin_of_a_list() -> None:
    """`FRONTEND_URL` may list several origins for CORS; links use the first one."""
    settings = Settings.from_env(
        {"FRONTEND_URL": "https://crm.example.com/, https://staging.crm.example.com"}
    )
    assert app_url(settings) == "https://crm.example.com/"
    assert sign_in_link(settings, "ann").startswith("https://crm.example.com/#signin=")


def test_without_frontend_url_links_lead_to_this_server() -> None:
    settings = Settings.from_env({"HOST": "0.0.0.0", "PORT": "8123"})
    assert app_url(settings) == "http://127.0.0.1:8123/"
    ipv6 = Settings.from_env({"HOST": "::1", "PORT": "8123"})
    assert app_url(ipv6) == "http://[::1]:8123/"
