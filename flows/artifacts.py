"""What a `process-video` run shows in the Prefect UI: engine tags, summary, usage ledger."""

from __future__ import annotations

from prefect import get_client
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import FlowRunContext

from video_processor.models import ResultDocument, ResultKeys


def engine_tags(stt_engine: str, llm_engine: str) -> list[str]:
    return [f"stt:{stt_engine}", f"llm:{llm_engine}"]


def tag_run_with_engines(stt_engine: str, llm_engine: str) -> None:
    """Add the engines the run resolved to its tags (the sensor only knows the user)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    run = context.flow_run
    tags = sorted({*run.tags, *engine_tags(stt_engine, llm_engine)})
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, tags=tags)


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


def ledger_table(result: ResultDocument) -> list[dict[str, object]]:
    """The result's `meta` as a table: stage times, audio sent to STT, LLM tokens, retries."""
    stages = result.meta.stages
    usage = result.meta.usage
    return [
        {"item": "download", "value": stages.download_ms, "unit": "ms"},
        {"item": "audio extraction", "value": stages.ffmpeg_ms, "unit": "ms"},
        {"item": "speech to text", "value": stages.stt_ms, "unit": "ms"},
        {"item": "summary", "value": stages.llm_ms, "unit": "ms"},
        {"item": "audio sent to STT", "value": round(usage.audio_seconds_to_stt, 1), "unit": "s"},
        {"item": "STT requests", "value": usage.stt_requests, "unit": "requests"},
        {"item": "LLM calls", "value": usage.llm_calls, "unit": "calls"},
        {"item": "LLM input tokens", "value": usage.llm_input_tokens, "unit": "tokens"},
        {"item": "LLM output tokens", "value": usage.llm_output_tokens, "unit": "tokens"},
        {"item": "LLM cache reads", "value": usage.llm_cache_read_tokens, "unit": "tokens"},
        {"item": "LLM cache writes", "value": usage.llm_cache_write_tokens, "unit": "tokens"},
        {"item": "task retries", "value": usage.task_retries, "unit": "retries"},
    ]


def publish_run_artifacts(result: ResultDocument, keys: ResultKeys, bucket: str) -> None:
    create_markdown_artifact(
        markdown=summary_markdown(result, keys, bucket),
        description=f"Summary of job {result.job_id}",
    )
    create_table_artifact(
        table=ledger_table(result),
        description=f"Usage ledger of job {result.job_id}",
    )
