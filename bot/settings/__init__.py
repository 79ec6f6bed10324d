"""Settings: the only reader of the environment, validated once at start."""

from bot.settings.fields import Mode, SettingsError
from bot.settings.load import load_app_settings, load_serving_settings, load_settings
from bot.settings.models import (
    PolicyFileSettings,
    PolicySettings,
    Settings,
    SlackSettings,
    StoreSettings,
    TenantSettings,
)

__all__ = [
    "Mode",
    "PolicyFileSettings",
    "PolicySettings",
    "Settings",
    "SettingsError",
    "SlackSettings",
    "StoreSettings",
    "TenantSettings",
    "load_app_settings",
    "load_serving_settings",
    "load_settings",
]
