"""`--tracing` for the benches: every service exports its spans over OTLP to a receiver here.

Off, the services run with OTEL_TRACES_EXPORTER unset (no exporter: spans are made by the
no-op path only). On, they export over OTLP/gRPC with the default batching (a batch every
5 s, at most 512 spans per export) to a TraceService in this process that counts what it
gets, as a collector on the same machine would take it. `sampler_ratio` sets
`parentbased_traceidratio` with that ratio: roots are sampled, their children follow.
"""

from __future__ import annotations

from tpf_testkit.otlp import OtlpReceiver


class TracingExport:
    def __init__(self, *, enabled: bool, sampler_ratio: float | None = None) -> None:
        self.enabled = enabled
        self._sampler_ratio = sampler_ratio
        self._receiver = OtlpReceiver(keep=False) if enabled else None
        if self._receiver is not None:
            self._receiver.start()

    @classmethod
    def disabled(cls) -> TracingExport:
        return cls(enabled=False)

    def env(self) -> dict[str, str]:
        """The OTEL_* variables of a service (none when off)."""
        if self._receiver is None:
            return {}
        env = self._receiver.environment(prompt=False)
        if self._sampler_ratio is not None:
            env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            env["OTEL_TRACES_SAMPLER_ARG"] = str(self._sampler_ratio)
        return env

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.stop()

    def figures(self) -> dict[str, object]:
        """Spans received so far (a service's last batch arrives when it stops)."""
        if self._receiver is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "sampler_ratio": self._sampler_ratio,
            "spans_received": self._receiver.count,
            "exports_received": self._receiver.exports,
        }
