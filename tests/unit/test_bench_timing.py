"""The benchmarks' interleaved timer: every function timed, in turn, as often as asked.

Timings themselves are not asserted (speed belongs in benchmarks/); what is
checked is the contract the benches rely on: one figure per function, each
repeat running every function once, in the given order.
"""

from __future__ import annotations

from benchmarks.common import interleaved_seconds_per_call


def test_each_function_runs_number_times_per_repeat_in_turn() -> None:
    calls: list[str] = []
    seconds = interleaved_seconds_per_call(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, number=3, repeat=4
    )
    assert set(seconds) == {"a", "b"}
    assert all(value > 0 for value in seconds.values())
    assert calls == (["a"] * 3 + ["b"] * 3) * 4


def test_without_a_number_each_function_gets_its_own_count() -> None:
    counts = {"cheap": 0, "dear": 0}

    def cheap() -> None:
        counts["cheap"] += 1

    def dear() -> None:
        counts["dear"] += 1
        sum(range(2_000))

    interleaved_seconds_per_call({"cheap": cheap, "dear": dear}, repeat=2)
    assert counts["cheap"] > counts["dear"] > 0
