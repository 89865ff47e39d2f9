"""The budget: warm-up and evaluation cadence follow --max-steps or --max-time when not given."""

from lmforge.training.config import TrainConfig
from lmforge.training.control import Budget


def test_step_budget_warms_up_over_a_fraction_and_evaluates_ten_times():
    budget = Budget(TrainConfig(max_steps=1000), train_time=0.0)
    assert budget.warmup_steps(0, 0.0) == 30
    assert budget.lr_factor(0, 0.0) == 1 / 30 and budget.lr_factor(29, 1.0) == 1.0
    due = [s for s in range(1, 1001) if budget.eval_due(s, 0.0, finished=s == 1000)]
    assert due == list(range(100, 1001, 100))
    assert Budget(TrainConfig(max_steps=1000, warmup_steps=7), 0.0).warmup_steps(500, 1.0) == 7
    assert Budget(TrainConfig(max_steps=1000, warmup_fraction=0.0), 0.0).lr_factor(0, 0.0) == 1.0


def test_time_budget_estimates_the_steps_from_the_speed_so_far():
    budget = Budget(TrainConfig(max_steps=10**6, max_time=60.0), train_time=0.0)
    assert budget.warmup_steps(0, 0.0) == 100               # before any speed is known: a gentle first step
    assert budget.warmup_steps(50, 5.0) == 18               # 10 steps/s for 60 s: 600 steps, 3% of them
    assert budget.progress(50, 30.0) == 0.5
    due = [t for t in range(1, 61) if budget.eval_due(t, float(t), finished=False)]
    assert due == list(range(6, 61, 6))
    resumed = Budget(TrainConfig(max_steps=10**6, max_time=60.0), train_time=60.0)   # 60 s more after a resume
    assert resumed.time_budget == 120.0 and not resumed.out_of_time(100.0) and resumed.out_of_time(120.0)
