"""The latency model the benchmarks give the fake engines, and what it predicts.

The figures are the issue's: CLOVA CSR answers in ``0.5 s + 0.15 × chunk seconds``, CLOVA
Speech in ``1 s + 0.05 × audio seconds``, Claude in ``2 s + 15 ms × output tokens``. Every
fake takes them at run time through its admin API (``POST /__admin/config``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import httpx

from video_processor.config import Settings

# The pipeline's defaults: chunk length of the audio stage, slots of `stt-clova-csr`.
CHUNK_SECONDS = float(Settings.model_fields["audio_chunk_seconds"].default)
CSR_CONCURRENCY = int(Settings.model_fields["clova_csr_concurrency"].default)
ADMIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LatencyModel:
    csr_base_s: float = 0.5
    csr_per_audio_s: float = 0.15
    speech_base_s: float = 1.0
    speech_per_audio_s: float = 0.05
    claude_base_s: float = 2.0
    claude_per_output_token_s: float = 0.015

    def scaled(self, factor: float) -> LatencyModel:
        """Every latency multiplied by ``factor`` (a faster run of the same shape)."""
        return LatencyModel(**{name: value * factor for name, value in asdict(self).items()})

    def csr_s(self, chunk_s: float) -> float:
        """One CLOVA CSR request for a chunk of ``chunk_s`` seconds."""
        return self.csr_base_s + self.csr_per_audio_s * chunk_s

    def claude_s(self, output_tokens: int, calls: int = 1) -> float:
        """``calls`` Claude requests one after the other, ``output_tokens`` in all."""
        return self.claude_base_s * calls + self.claude_per_output_token_s * output_tokens

    def fake_configs(self) -> dict[str, dict[str, float]]:
        """The admin config of each fake, by the stack variable that holds its URL."""
        return {
            "FAKE_CLOVA_URL": {
                "base_latency_s": self.csr_base_s,
                "per_audio_second_s": self.csr_per_audio_s,
            },
            "FAKE_CLOVA_SPEECH_URL": {
                "base_latency_s": self.speech_base_s,
                "per_audio_second_s": self.speech_per_audio_s,
            },
            "FAKE_ANTHROPIC_URL": {
                "base_latency_s": self.claude_base_s,
                "per_output_token_s": self.claude_per_output_token_s,
            },
        }

    def to_json(self) -> dict[str, float]:
        return asdict(self)


ISSUE_MODEL = LatencyModel()


def configure_fakes(env: Mapping[str, str], model: LatencyModel, reset: bool = True) -> None:
    """Give the stack's fakes the model's latencies (after a reset of their stats)."""
    with httpx.Client(timeout=ADMIN_TIMEOUT_S) as http:
        for variable, config in model.fake_configs().items():
            base = env[variable]
            if reset:
                http.post(f"{base}/__admin/reset").raise_for_status()
            http.post(f"{base}/__admin/config", json=config).raise_for_status()


def chunk_durations(total_s: float, chunk_s: float = CHUNK_SECONDS) -> list[float]:
    """The chunks the audio stage cuts ``total_s`` seconds of audio into."""
    if total_s <= 0:
        return []
    full = math.floor(total_s / chunk_s + 1e-9)
    rest = round(total_s - full * chunk_s, 6)
    return [chunk_s] * full + ([rest] if rest > 1e-3 else [])


def makespan(durations: list[float], workers: int) -> float:
    """When the last of ``durations`` ends on ``workers`` slots taken in order (list scheduling)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    free_at = [0.0] * min(workers, max(1, len(durations)))
    for duration in durations:
        slot = free_at.index(min(free_at))
        free_at[slot] += duration
    return max(free_at)
