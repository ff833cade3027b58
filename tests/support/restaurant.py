"""Moved to `tpf_testkit.restaurant` (bench/ shares it); re-exported for the tests."""

from tpf_testkit.restaurant import (
    ORDER_TYPE as ORDER_TYPE,
)
from tpf_testkit.restaurant import (
    TRANSITION as TRANSITION,
)
from tpf_testkit.restaurant import (
    envelope as envelope,
)
from tpf_testkit.restaurant import (
    order as order,
)
from tpf_testkit.restaurant import (
    order_envelope as order_envelope,
)
