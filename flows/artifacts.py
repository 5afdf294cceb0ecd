"""What a `process-video` run shows in the Prefect UI: its summary and its usage ledger."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from video_processor.models import AudioManifest, ResultDocument, ResultKeys


def _timestamp(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def summary_markdown(result: ResultDocument, keys: ResultKeys, bucket: str) -> str:
    summary = result.summary
    points = "\n".join(
        f"- [{_timestamp(point.start_s)}] {point.text}" for point in summary.key_points
    )
    return (
        f"# {summary.title or result.job_id}\n\n{summary.text}\n\n"
        f"{points}\n\n"
        f"**Keywords:** {', '.join(summary.keywords) or '—'}\n\n"
        f"- result: `s3://{bucket}/{keys.result}`\n"
        f"- subtitles: `s3://{bucket}/{keys.srt}`, `s3://{bucket}/{keys.vtt}`\n"
        f"- source: `s3://{result.s3_bucket}/{result.s3_key}`\n"
    )


def usage_ledger(result: ResultDocument, manifest: AudioManifest) -> list[dict[str, object]]:
    """Where the job's time and money went: stage times, audio sent to STT, LLM tokens."""
    usage = result.summary.usage
    stages = result.meta.stages
    return [
        {"item": "download", "value": stages.download_ms, "unit": "ms"},
        {"item": "audio extraction", "value": stages.ffmpeg_ms, "unit": "ms"},
        {"item": "speech to text", "value": stages.stt_ms, "unit": "ms"},
        {"item": "summary", "value": stages.llm_ms, "unit": "ms"},
        {"item": "audio sent to STT", "value": round(manifest.audio_duration_s, 1), "unit": "s"},
        {"item": "STT chunks", "value": len(manifest.chunks), "unit": "requests"},
        {"item": "LLM calls", "value": usage.llm_calls, "unit": "calls"},
        {"item": "LLM input tokens", "value": usage.input_tokens, "unit": "tokens"},
        {"item": "LLM output tokens", "value": usage.output_tokens, "unit": "tokens"},
        {"item": "LLM cache reads", "value": usage.cache_read_input_tokens, "unit": "tokens"},
        {"item": "LLM cache writes", "value": usage.cache_creation_input_tokens, "unit": "tokens"},
    ]


def publish_run_artifacts(
    result: ResultDocument, manifest: AudioManifest, keys: ResultKeys, bucket: str
) -> None:
    create_markdown_artifact(
        markdown=summary_markdown(result, keys, bucket),
        description=f"Summary of job {result.job_id}",
    )
    create_table_artifact(
        table=usage_ledger(result, manifest),
        description=f"Usage ledger of job {result.job_id}",
    )
