"""The runbook's clock as a pure decision: which mitigations failed, and when to escalate (DESIGN §6.1)."""

from __future__ import annotations

from tests.runbook.record import T0, Record, W
from watcher.events import Cause
from watcher.runbook.escalation import Decisions, Policy, decide

POLICY = Policy(no_hypothesis_after=1200.0, failed_mitigations=2)


def judge(rec: Record, now: float, policy: Policy = POLICY) -> Decisions:
    return decide(rec.row, rec.facts(), policy, now)


class TestNoHypothesis:
    def test_escalates_at_open_plus_20_minutes(self) -> None:
        """No hypothesis 20 minutes after it opened: one escalation, stamped at the deadline."""
        rec = Record()
        assert judge(rec, T0 + 1199.0).escalate == ()
        (esc,) = judge(rec, T0 + 1260.0).escalate
        assert (esc.cause, esc.at) == (Cause.NO_HYPOTHESIS, T0 + 1200.0)
        assert "no hypothesis recorded 20m after it opened" in esc.reason

    def test_due_says_when_to_look_again(self) -> None:
        """Before the deadline the decision says when it falls due, so the daemon need not poll."""
        assert judge(Record(), T0 + 60.0).due == T0 + 1200.0

    def test_a_hypothesis_in_time_answers_it(self) -> None:
        """A hypothesis recorded before the deadline: no escalation, then or later."""
        rec = Record().hypothesis(T0 + 600.0)
        assert judge(rec, T0 + 5000.0).escalate == ()

    def test_a_late_hypothesis_does_not_undo_it(self) -> None:
        """A hypothesis recorded after the deadline: the incident was still without one at 20 minutes."""
        rec = Record().hypothesis(T0 + 1500.0)
        assert [e.cause for e in judge(rec, T0 + 1600.0).escalate] == [Cause.NO_HYPOTHESIS]

    def test_resolved_at_the_deadline_needs_no_escalation(self) -> None:
        """Mitigated and proven resolved before 20 minutes: nothing to escalate, hypothesis or not."""
        rec = Record().mitigate(T0 + 60.0, "rollback").resolve(T0 + 60.0 + W)
        assert judge(rec, T0 + 2000.0).escalate == ()

    def test_regressed_before_the_deadline_still_escalates(self) -> None:
        """A resolution overturned before the deadline does not answer it."""
        rec = Record().mitigate(T0 + 10.0, "rollback").resolve(T0 + 10.0 + W).regress(T0 + 1000.0)
        assert [e.cause for e in judge(rec, T0 + 1300.0).escalate] == [Cause.NO_HYPOTHESIS]

    def test_once(self) -> None:
        """An escalation on the record is not made again."""
        rec = Record().escalated(T0 + 1200.0, "no_hypothesis")
        assert judge(rec, T0 + 9000.0).escalate == ()

    def test_configurable(self) -> None:
        """`no_hypothesis_after` moves the deadline."""
        (esc,) = judge(Record(), T0 + 5.0, Policy(no_hypothesis_after=3.0)).escalate
        assert esc.at == T0 + 3.0 and "3s after it opened" in esc.reason

    def test_a_reopened_incident_counts_from_its_reopening(self) -> None:
        """After a reopening the 20 minutes start again (a hypothesis from before still answers)."""
        rec = Record().close(T0 + 500.0).reopen(T0 + 3000.0)
        assert judge(rec, T0 + 3000.0 + 1199.0).escalate == ()
        assert [e.at for e in judge(rec, T0 + 3000.0 + 1201.0).escalate] == [T0 + 4200.0]

    def test_a_closed_incident_is_not_judged(self) -> None:
        """Closed: the clock stops."""
        assert judge(Record().close(T0 + 60.0), T0 + 5000.0) == Decisions()


class TestFailedMitigations:
    def test_not_resolved_within_twice_the_window(self) -> None:
        """A mitigation without a resolution in 2 x window has failed, at M + 2 x window."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "restart sfu")
        assert judge(rec, T0 + 100.0 + 2 * W - 1).failed == ()
        (fail,) = judge(rec, T0 + 100.0 + 2 * W).failed
        assert (fail.at, fail.mitigated_at, fail.action) == (T0 + 100.0 + 2 * W, T0 + 100.0, "restart sfu")
        assert fail.reason == "not resolved within 30m (twice its window)"

    def test_due_is_the_earliest_deadline(self) -> None:
        """While a mitigation is judged, the decision falls due at its 2 x window."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "restart sfu")
        assert judge(rec, T0 + 200.0).due == T0 + 100.0 + 2 * W

    def test_resolved_in_time_did_not_fail(self) -> None:
        """A resolution within 2 x window: the mitigation worked."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "rollback").resolve(T0 + 100.0 + W)
        assert judge(rec, T0 + 10 * W).failed == ()

    def test_regressed_after_it(self) -> None:
        """Resolved, then regressed before the next mitigation: failed at the regression."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "rollback")
        rec.resolve(T0 + 100.0 + W).regress(T0 + 1500.0)
        (fail,) = judge(rec, T0 + 1501.0).failed
        assert fail.at == T0 + 1500.0 and fail.reason.startswith("regressed at 2026-")

    def test_a_regression_after_the_next_mitigation_is_the_next_ones(self) -> None:
        """A regression is held against the mitigation in force when it happened."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "rollback").resolve(T0 + 100.0 + W)
        rec.mitigate(T0 + 1100.0, "flag off").resolve(T0 + 1100.0 + W).regress(T0 + 2500.0)
        assert [f.action for f in judge(rec, T0 + 2501.0).failed] == ["flag off"]

    def test_failures_on_the_record_are_not_found_again(self) -> None:
        """A failure the record holds is not decided twice."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "restart sfu")
        rec.failed(T0 + 100.0 + 2 * W, T0 + 100.0, "restart sfu", 1)
        assert judge(rec, T0 + 10 * W).failed == ()

    def test_second_failure_escalates_once(self) -> None:
        """The second failed mitigation escalates, at the time it failed; only once."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "restart sfu")
        rec.mitigate(T0 + 200.0, "rollback")
        d = judge(rec, T0 + 200.0 + 2 * W)
        assert [f.action for f in d.failed] == ["restart sfu", "rollback"]
        (esc,) = d.escalate
        assert (esc.cause, esc.at) == (Cause.MITIGATIONS_FAILED, T0 + 200.0 + 2 * W)
        assert esc.reason.startswith("2 mitigations failed: restart sfu (not resolved within 30m")
        rec.failed(T0 + 100.0 + 2 * W, T0 + 100.0, "restart sfu", 1)
        rec.failed(T0 + 200.0 + 2 * W, T0 + 200.0, "rollback", 2)
        rec.escalated(T0 + 200.0 + 2 * W, "mitigations_failed")
        assert judge(rec, T0 + 20 * W) == Decisions()

    def test_one_failure_does_not_escalate(self) -> None:
        """Below `failed_mitigations` failures: no escalation."""
        rec = Record().hypothesis(T0 + 1.0).mitigate(T0 + 100.0, "restart sfu")
        assert judge(rec, T0 + 10 * W).escalate == ()
        assert [e.cause for e in judge(rec, T0 + 10 * W, Policy(failed_mitigations=1)).escalate] == [
            Cause.MITIGATIONS_FAILED
        ]

    def test_both_causes_at_once(self) -> None:
        """No hypothesis and two failures: one escalation per cause."""
        rec = Record().mitigate(T0 + 10.0, "restart sfu").mitigate(T0 + 20.0, "rollback")
        causes = sorted(e.cause for e in judge(rec, T0 + 20.0 + 2 * W).escalate)
        assert causes == [Cause.MITIGATIONS_FAILED, Cause.NO_HYPOTHESIS]
