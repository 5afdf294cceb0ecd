"""The crash-recovery automations' triggers: what counts as a zombie, what as never started."""

import uuid

from prefect.events.schemas.automations import EventTrigger
from prefect.events.schemas.events import ResourceSpecification

from operations.automations import (
    CRASH_AUTOMATION,
    START_AUTOMATION,
    ZOMBIE_AUTOMATION,
    desired_automations,
)


def test_a_slow_start_has_its_own_longer_window_than_a_silent_run():
    automations = {a.name: a for a in desired_automations([uuid.uuid4()], uuid.uuid4(), 90, 600)}
    assert set(automations) == {ZOMBIE_AUTOMATION, START_AUTOMATION, CRASH_AUTOMATION}
    zombie = automations[ZOMBIE_AUTOMATION].trigger
    start = automations[START_AUTOMATION].trigger
    assert isinstance(zombie, EventTrigger) and isinstance(start, EventTrigger)
    assert zombie.within is not None and start.within is not None
    assert zombie.after == {"prefect.flow-run.heartbeat", "prefect.flow-run.Running"}
    assert zombie.within.total_seconds() == 90
    assert "prefect.flow-run.heartbeat" in zombie.expect
    # Pending is followed by Running only once the process or pod is up: minutes, not 90 s.
    assert start.after == {"prefect.flow-run.Pending"}
    assert "prefect.flow-run.Running" in start.expect
    assert start.within.total_seconds() == 600
    for trigger in (zombie, start):
        assert "prefect.flow-run.Crashed" in trigger.expect  # a run that ended is left alone


def test_every_automation_watches_the_runs_of_each_process_video_deployment():
    warm, isolated = uuid.uuid4(), uuid.uuid4()
    for automation in desired_automations([warm, isolated], uuid.uuid4(), 90, 600):
        assert isinstance(automation.trigger, EventTrigger)
        related = automation.trigger.match_related
        assert isinstance(related, ResourceSpecification)
        assert related["prefect.resource.role"] == ["deployment"]
        assert related["prefect.resource.id"] == [
            f"prefect.deployment.{warm}",
            f"prefect.deployment.{isolated}",
        ]
