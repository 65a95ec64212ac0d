"""The settings plane: ``soloist.toml`` and the environment, read once into typed tables."""

from soloist.config.settings import CONFIG_FILE, Settings, load_settings, parse_table, parse_toml

__all__ = ["CONFIG_FILE", "Settings", "load_settings", "parse_table", "parse_toml"]
