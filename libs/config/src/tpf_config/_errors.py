"""The one exception a service raises when its configuration cannot work."""


class ConfigError(Exception):
    """Configuration is missing or invalid; the message names the TPF_* variable to fix.

    `__main__` lets it end the process before anything listens, so a misconfigured service
    never looks healthy.
    """
