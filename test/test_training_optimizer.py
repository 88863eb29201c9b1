"""The head's own learning rate: parameter groups, Adam's first step, decay per group."""

from __future__ import annotations

import pytest
import torch

from glimpse_ros.config import ModelConfig
from glimpse_ros.model.glimpse_clouds import GlimpseClouds
from training.config import OptimConfig, load_train_config
from training.engine import freeze_untrained
from training.optimizer import build_optimizer, set_epoch_lr

CFG = ModelConfig.small(num_classes=4, frames=2, crop_size=32, resize_size=40, memory_slots=2)


def _model(stage: str, **model) -> GlimpseClouds:
    torch.manual_seed(0)
    m = GlimpseClouds(ModelConfig.small(**{**CFG.__dict__, **model}))
    freeze_untrained(m, stage)
    return m


def _first_step_deltas(model: GlimpseClouds, optim: OptimConfig) -> dict[str, float]:
    """Largest |change| per parameter after one Adam step on gradients of all ones.

    Adam's first step moves every weight by lr * g / (|g| + eps) = lr (bias-corrected moments of
    a single gradient), a closed form independent of the optimizer's groups.
    """
    opt = build_optimizer(model, optim)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for n, p in model.named_parameters():
        if p.requires_grad:
            p.grad = torch.ones_like(p)
    opt.step()
    params = dict(model.named_parameters())
    return {n: float((params[n].detach() - before[n]).abs().max()) for n in before}


def test_stage2_head_learns_at_head_lr_and_the_rest_at_lr():
    """Names under ``head.`` move by head_lr, every other trained weight by lr."""
    deltas = _first_step_deltas(_model("full"), OptimConfig(lr=2e-4, head_lr=1e-3))
    head = {n for n in deltas if n.startswith("head.")}
    assert head and len(head) < len(deltas)
    for name, delta in deltas.items():
        want = 1e-3 if name in head else 2e-4
        assert delta == pytest.approx(want, rel=1e-3), name
    # global_fc is not trained in stage 2 (removed after stage 1), so it has no group at all.
    assert not any(n.startswith("global_fc.") for n in deltas)


def test_head_lr_zero_is_the_single_rate_and_stage1_has_no_head_group():
    """head_lr 0 = lr everywhere; stage 1 trains no head, so only the ``rest`` group exists."""
    deltas = _first_step_deltas(_model("full"), OptimConfig(lr=3e-4, head_lr=0.0))
    assert all(d == pytest.approx(3e-4, rel=1e-3) for d in deltas.values())
    opt = build_optimizer(_model("global"), OptimConfig(lr=1e-3, head_lr=5e-3))
    assert [g["name"] for g in opt.param_groups] == ["rest"]
    assert opt.param_groups[0]["lr"] == 1e-3


def test_decay_applies_to_each_group_from_the_config():
    """Step decay multiplies each group's own base rate; resuming re-reads the config's rates."""
    cfg = OptimConfig(lr=2e-4, head_lr=1e-3, lr_decay_epochs=(2, 4), lr_decay=0.5)
    opt = build_optimizer(_model("full"), cfg)
    rates = {}
    for epoch in range(5):
        set_epoch_lr(opt, cfg, epoch)
        rates[epoch] = {g["name"]: g["lr"] for g in opt.param_groups}
    assert rates[1] == pytest.approx({"head": 1e-3, "rest": 2e-4})
    assert rates[2] == pytest.approx({"head": 5e-4, "rest": 1e-4})
    assert rates[4] == pytest.approx({"head": 2.5e-4, "rest": 5e-5})
    # A run resumed with another head_lr follows the new configuration.
    set_epoch_lr(opt, OptimConfig(lr=2e-4, head_lr=4e-4), 0)
    assert {g["name"]: g["lr"] for g in opt.param_groups} == pytest.approx(
        {"head": 4e-4, "rest": 2e-4})


def test_head_lr_config_key_is_validated():
    """Negative rates are refused naming the key; the paper configs keep the single rate."""
    assert load_train_config(None, ["optim.head_lr=1e-3"]).optim.head_lr == 1e-3
    with pytest.raises(ValueError, match="optim.head_lr"):
        load_train_config(None, ["optim.head_lr=-1"])
    with pytest.raises(ValueError, match="optim.lr"):
        load_train_config(None, ["optim.lr=0"])
    for name in ("ntu_cs", "ntu_cv", "nucla_v3_12"):
        assert load_train_config(f"config/train/{name}.yaml").optim.head_lr == 0.0


def test_head_warmup_moves_only_the_head_then_everything():
    """During optim.head_warmup_epochs of stage 2 only head weights move; afterwards all do."""
    from training.optimizer import warming_up

    cfg = OptimConfig(lr=2e-4, head_lr=1e-3, head_warmup_epochs=2)
    assert [warming_up(cfg, "full", e) for e in range(4)] == [True, True, False, False]
    assert not warming_up(cfg, "global", 0)          # stage 1 has no head to warm up
    model = _model("full")
    opt = build_optimizer(model, cfg)
    for epoch, head_only in ((0, True), (2, False)):
        set_epoch_lr(opt, cfg, epoch, "full")
        before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        for p in model.parameters():
            if p.requires_grad:
                p.grad = torch.ones_like(p)
        opt.step()
        params = dict(model.named_parameters())
        for name, old in before.items():
            moved = not torch.equal(params[name].detach(), old)
            assert moved == (name.startswith("head.") or not head_only), (epoch, name)
    with pytest.raises(ValueError, match="optim.head_warmup_epochs"):
        load_train_config(None, ["optim.head_warmup_epochs=-1"])


def test_freeze_backbone_bn_needs_trained_statistics(tmp_path):
    """Keeping batch-norm statistics needs a trained backbone: init, a 2D file or a resumed run."""
    from training.train import configure, parse_args

    base = ["--config", "config/train/synthetic.yaml", "freeze_backbone_bn=true"]
    cfg, source = configure(parse_args(base + ["init=x.pt"]))
    assert cfg.freeze_backbone_bn and source is None
    with pytest.raises(ValueError, match="freeze_backbone_bn"):
        configure(parse_args(base))
    # --resume reads the stored configuration: no init needed (a missing file is the error).
    with pytest.raises(ValueError, match="last.pt|not found|no such"):
        configure(parse_args(base + [f"out_dir={tmp_path}", "--resume"]))


def test_resume_from_a_single_group_optimizer_starts_adam_afresh(caplog):
    """An older stage-2 checkpoint (one group) resumes with fresh moments and a warning."""
    from training.optimizer import load_optimizer_state

    model = _model("full")
    old = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.ones_like(p)
    old.step()
    new = build_optimizer(model, OptimConfig(lr=1e-4, head_lr=1e-3))
    load_optimizer_state(new, old.state_dict(), "old/last.pt")
    assert "start afresh" in caplog.text and not new.state
    same = build_optimizer(model, OptimConfig(lr=1e-4, head_lr=1e-3))
    same.step()
    again = build_optimizer(model, OptimConfig(lr=1e-4, head_lr=1e-3))
    load_optimizer_state(again, same.state_dict(), "new/last.pt")
    assert len(again.state) == len(same.state) > 0
