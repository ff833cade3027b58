"""One CollectorRegistry per service process, with the standard process and Python metrics."""

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def new_registry() -> CollectorRegistry:
    """A fresh registry holding `process_*` and `python_*` (the only metrics not named `tpf_*`:
    dashboards everywhere know them by these names).

    A registry per service instead of prometheus_client's global one: tests run several
    services' parts in one process, and each must count only its own.
    """
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
