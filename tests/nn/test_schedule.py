"""RefreshSchedule: the one copy of the sparse-IN refresh rule, shared by the layers of a stream."""

import copy

import pytest
import torch

from ibntrack.nn import IBN, build_model, stream_schedule
from ibntrack.nn.schedule import Plan, RefreshSchedule, ScheduleState


@pytest.mark.parametrize(
    ("s", "computed"), [(5, (0, 5)), (2, (0, 2, 4, 6, 8)), (10, (0,)), (1, tuple(range(10)))]
)
def test_plan_selects_every_sth_frame(s: int, computed: tuple) -> None:
    plan = RefreshSchedule(s).plan(10)
    assert plan.selected == computed
    # each frame uses the nearest preceding computed frame: row index into the computed statistics
    assert plan.source == tuple(max(j for j, c in enumerate(computed) if c <= i) for i in range(10))
    assert plan.flags == tuple(i in computed for i in range(10))


def test_leading_frames_use_the_cache_row() -> None:
    sched = RefreshSchedule(4)
    sched.plan(3)  # refresh at 0; since = 3
    plan = sched.plan(3)  # frame 3 reuses the cache, 4 refreshes (since 4), 5 reuses 4
    assert plan == Plan(selected=(1,), source=(1, 0, 0))
    assert sched.stats() == {"frames": 6, "refreshes": 2}


def test_no_cache_forces_the_first_frame() -> None:
    sched = RefreshSchedule(5)
    sched.plan(1)
    assert sched.plan(1, cached=True).selected == ()
    assert sched.plan(1, cached=False).selected == (0,)


@pytest.mark.parametrize("s", [1, 2, 3, 7])
def test_one_frame_fast_path_follows_the_general_schedule(s: int) -> None:
    """``plan(1)`` (the folded model's hot path) leaves the same state as the general rule."""
    fast, general = RefreshSchedule(s), RefreshSchedule(s)
    for t in range(20):
        if t in (5, 11):
            fast.force()
            general.force()
        if t == 9:
            fast.reset()
            general.reset()
        plan = general._plan_general(1, cached=True)
        quick = fast.plan(1)
        assert quick == plan
        assert fast.state == general.state
    # counters restart at the reset (t = 9); then refreshes at 9, at the forced 11, and every s after 11:
    # s=1: 9..19 (11); s=2: 9, 11, 13, 15, 17, 19; s=3: 9, 11, 14, 17; s=7: 9, 11, 18
    assert fast.state.refreshes == {1: 11, 2: 6, 3: 4, 7: 3}[s]


def test_members_share_one_batch_and_a_repeat_starts_the_next() -> None:
    sched = RefreshSchedule(3)
    a, b = object(), object()
    first = sched.plan_for(a, 1)
    assert sched.plan_for(b, 1) is first  # same forward pass
    assert sched.stats() == {"frames": 1, "refreshes": 1}
    sched.plan_for(a, 1)  # a asks again: the next frame
    assert sched.stats()["frames"] == 2
    sched.force()  # ends the batch in flight; the next member starts a forced one
    assert sched.plan_for(b, 1).selected == (0,)
    assert sched.stats() == {"frames": 3, "refreshes": 2}


def test_a_network_has_one_schedule_and_one_forward_is_one_frame() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18-ibn", emb_dim=8, width=0.25, head_conv=8).eval()
    layers = [m for m in model.modules() if isinstance(m, IBN)]
    assert len(layers) == 6 and len({id(m.schedule) for m in layers}) == 1
    sched = stream_schedule(model)
    sched.sparsity = 2
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(1, 3, 64, 64))
    assert sched.state == ScheduleState(frames=3, refreshes=2, since=1, force=False)
    twin = copy.deepcopy(model)  # a copy (e.g. fold_model) gets its own schedule, shared by its layers
    twin_layers = [m for m in twin.modules() if isinstance(m, IBN)]
    assert twin_layers[0].schedule is not sched
    assert len({id(m.schedule) for m in twin_layers}) == 1
    assert twin_layers[0].schedule.state == sched.state


@pytest.mark.parametrize("s", [0, -1, 1.5, True, "2"])
def test_bad_sparsity(s: object) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        RefreshSchedule(s)  # type: ignore[arg-type]
