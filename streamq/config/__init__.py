"""Configuration: TOML loading and validation that names the file, line and key path of every mistake."""
