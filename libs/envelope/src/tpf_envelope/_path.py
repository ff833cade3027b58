"""Where inside a payload something went wrong, written JSONPath style (`$.accepted.orderId`).

Map keys and list indexes name the nested envelope; the path follows decoded values, not the
escaped JSON text, so `$.items[2].note` is the `note` entry of the third item.
"""

import json
import re

ROOT = "$"

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_path(parent: str, key: str) -> str:
    """The path of map entry `key` under `parent`; odd keys are quoted: `$["order id"]`."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def index_path(parent: str, index: int) -> str:
    """The path of list item `index` under `parent`: `$[0]`."""
    return f"{parent}[{index}]"
