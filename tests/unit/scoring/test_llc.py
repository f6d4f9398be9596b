"""Known-answer tests of the SGLD local learning coefficient estimator (scoring/llc.py).

Calibration (2 CPU cores, seeds fixed so every test is deterministic):
- Regular model, linear regression d = 10, n = 2,000, loss = MSE (nbeta * Hessian ~ 526): epsilon = 1e-4,
  gamma = 1, batch 256, 4 chains x (300 burn-in + 2,000 draws) gives 4.84 +- 0.19 (truth 5). Larger steps
  bias it up by discretization (3e-4 -> 5.3, 1e-3 -> 6.7); gamma = 1 costs < 0.2% (REFERENCE section 3).
- Deep linear networks at a true map of rank r whose every layer has rank r (the most singular true points),
  n = 2,000, 0.5 * ||y - W_L...W_1 x||^2, epsilon = 2e-4, gamma = 1, batch 500, 4 x (1,000 + 5,000), mean of
  three data seeds, against Aoyagi (2024): widths (4,3,3,4) r=1 -> 0.90x the truth; (3,4,4,3) r=2 -> 1.11x;
  (6,4,5) r=2 -> 0.90x; (3,5,5,3) r=1 -> 1.00x; (4,4,4,4,4) r=2 -> 1.17x; (5,3,4,2) r=0 -> 0.75x. Steps of
  4e-4 move every case up by 10-50% (discretization), 1e-4 down (chains not yet mixed along the valleys), so
  the tests below use the three cases within 10% at this one setting and allow 15% (README, "Calibrating SGLD").
- Reduced-rank regression (5, 3, 5), r = 0, at the true zero matrix, n = 2,000, loss = 0.5 * ||y - BAx||^2:
  the flat valley mixes slowly, so it needs larger steps: epsilon = 1e-3, gamma = 1, batch 500,
  4 x (500 + 3,000) gives 6.26 +- 0.17 (truth 6.5); epsilon 1e-4 gives 4.7, 3e-4 5.3, 2e-3 6.8.
- RMSProp-preconditioned SGLD (``SGLDConfig.preconditioner``) scales the steep directions' steps by G ~ 1/|nbeta g|
  (about 1/20 on the regular model), so it needs a larger epsilon for the same mixing: 3e-3 gives 5.09 +- 0.21,
  1e-4 gives 3.7 (unmixed). Without noise it is torch's RMSprop, and its MALA probe is checked like the plain one.
- MALA is probed on kept steps only: from the mode a move's acceptance is about exp(-d (eps gamma)^2 / 8), which
  measures the chain's age, not the step; after three relaxation times 2/(eps gamma) the same step is near 1.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from data.errors import ScoringError
from scoring.config import SGLDConfig
from scoring.llc import (
    dln_learning_coefficient,
    estimate_llc,
    estimate_llc_loop,
    rrr_learning_coefficient,
    split_r_hat,
    trace_drift,
)
from tests.helpers.linear_models import deep_linear_network, gaussian_nll

REGULAR = SGLDConfig(epsilon=1e-4, gamma=1.0, num_chains=4, num_draws=2000, num_burnin=300, batch_size=256)


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(out, y)


def regression(n: int = 2000, d: int = 10, at_minimum: bool = True) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """y = Xw + N(0, 1); the model is fitted by least squares (w*) unless at_minimum is False."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=gen)
    y = x @ torch.randn(d, 1, generator=gen) + torch.randn(n, 1, generator=gen)
    model = nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y).solution.T if at_minimum else torch.zeros(1, d))
    return model, x, y


@pytest.mark.parametrize(("mhnr", "expected"), [((5, 3, 5, 0), 6.5), ((5, 4, 5, 0), 8.0), ((4, 3, 8, 0), 6.0),
                                                 ((10, 5, 10, 2), 29.0)])
def test_rrr_learning_coefficient_worked_values(mhnr, expected):
    assert rrr_learning_coefficient(*mhnr) == pytest.approx(expected)


def test_dln_learning_coefficient_reduces_to_reduced_rank_regression_with_two_layers():
    for m, h, n in [(m, h, n) for m in range(1, 8) for h in range(1, 8) for n in range(1, 8)]:
        for r in range(min(m, h, n) + 1):
            assert dln_learning_coefficient((n, h, m), r) == pytest.approx(rrr_learning_coefficient(m, h, n, r))


@pytest.mark.parametrize(("widths", "rank", "expected"), [
    ((4, 3, 3, 4), 1, 5.5), ((3, 4, 4, 3), 2, 4.5), ((10, 20, 20, 10), 0, 50.0), ((6, 4, 5), 2, 12.0),
])
def test_dln_learning_coefficient_known_values(widths, rank, expected):
    # regular model when nothing is singular: one layer, lambda = d / 2
    assert dln_learning_coefficient((7, 3), 3) == pytest.approx(21 / 2)
    assert dln_learning_coefficient(widths, rank) == pytest.approx(expected)


def test_dln_learning_coefficient_rejects_impossible_ranks():
    with pytest.raises(ValueError, match="narrowest width"):
        dln_learning_coefficient((4, 2, 4), 3)


@pytest.mark.slow
@pytest.mark.parametrize(("widths", "rank"), [((4, 3, 3, 4), 1), ((6, 4, 5), 2), ((3, 5, 5, 3), 1)])
def test_deep_linear_network_llc_matches_aoyagi(widths, rank):
    torch.set_num_threads(1)  # tiny matrices: two threads on two shared cores ran one case 25x slower, same values
    estimates = []
    for seed in range(3):
        model, x, y = deep_linear_network(widths, rank, seed=seed)
        cfg = SGLDConfig(epsilon=2e-4, gamma=1.0, num_chains=4, num_draws=5000, num_burnin=1000, batch_size=500,
                         seed=seed)
        estimates.append(estimate_llc(model, (x, y), gaussian_nll, cfg, n=len(x)).mean)
    truth = dln_learning_coefficient(widths, rank)
    assert sum(estimates) / 3 == pytest.approx(truth, rel=0.15), (estimates, truth)


@pytest.mark.parametrize("estimator", [estimate_llc, estimate_llc_loop])
@pytest.mark.parametrize("preconditioner", ["none", "rmsprop"])
def test_sgld_without_noise_localization_and_temperature_is_gradient_descent(estimator, preconditioner):
    """Without noise, at gamma 0 and nbeta 1, plain SGLD is SGD at lr eps/2 and RMSProp-SGLD is torch's RMSprop."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x, y = torch.randn(64, 3), torch.randn(64, 1)
    cfg = SGLDConfig(epsilon=0.2, gamma=0.0, nbeta=1.0, noise=False, num_chains=2, num_draws=15, num_burnin=0,
                     batch_size=64, init_loss_batches=1, preconditioner=preconditioner, rmsprop_alpha=0.9,
                     rmsprop_eps=1e-3)
    if preconditioner == "rmsprop":
        cfg = replace(cfg, epsilon=0.02)  # RMSprop's steps are ~lr per coordinate whatever the gradient
    est = estimator(model, (x, y), mse, cfg, n=64)

    gd = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    gd.load_state_dict(model.state_dict())
    opt = (torch.optim.SGD(gd.parameters(), lr=cfg.epsilon / 2) if preconditioner == "none" else
           torch.optim.RMSprop(gd.parameters(), lr=cfg.epsilon / 2, alpha=cfg.rmsprop_alpha, eps=cfg.rmsprop_eps))
    expected = []
    for _ in range(cfg.num_draws):
        opt.zero_grad()
        loss = mse(gd(x), y)
        loss.backward()
        opt.step()
        expected.append(loss.item())
    assert est.nbeta == 1.0
    assert est.init_loss == pytest.approx(expected[0], rel=1e-6)
    assert expected[-1] < expected[0] - 0.02  # it really descended
    for chain in est.loss_traces:
        torch.testing.assert_close(chain, torch.tensor(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_regular_model_llc_is_half_the_dimension():
    model, x, y = regression()
    est = estimate_llc(model, (x, y), mse, REGULAR, n=len(x))
    assert est.nbeta == pytest.approx(2000 / torch.log(torch.tensor(2000.0)).item())
    assert est.mean == pytest.approx(5.0, rel=0.10), est
    assert est.loss_traces.shape == (4, 2000) and est.loss_traces.device.type == "cpu"
    assert len(est.per_chain) == 4 and est.diagnostics == ()


@pytest.mark.slow
def test_rmsprop_sgld_llc_of_a_regular_model_is_half_the_dimension():
    """RMSProp shrinks the steep directions' steps by G ~ 1 / |nbeta g| (about 1/20 here), so it takes a larger
    epsilon than plain SGLD for the same mixing: at 1e-4 its chains have not spread (3.7), at 3e-3 they give 5.1."""
    model, x, y = regression()
    est = estimate_llc(model, (x, y), mse, replace(REGULAR, epsilon=3e-3, preconditioner="rmsprop"), n=len(x))
    assert est.mean == pytest.approx(5.0, rel=0.10), est
    assert est.acceptance > 0.99


@pytest.mark.slow
def test_reduced_rank_regression_at_true_zero_matches_aoyagi_watanabe():
    M, H, N, n = 5, 3, 5, 2000  # noqa: N806 (the paper's names)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, N, generator=gen), torch.randn(n, M, generator=gen)  # truth: the zero matrix
    model = nn.Sequential(nn.Linear(N, H, bias=False), nn.Linear(H, M, bias=False))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    cfg = SGLDConfig(epsilon=1e-3, gamma=1.0, num_chains=4, num_draws=3000, num_burnin=500, batch_size=500)
    est = estimate_llc(model, (x, y), gaussian_nll, cfg, n=n)
    assert est.mean == pytest.approx(rrr_learning_coefficient(M, H, N, 0), rel=0.10), est


@pytest.mark.parametrize("preconditioner", ["none", "rmsprop"])
def test_vmapped_and_loop_draw_the_same_chains_with_the_same_seed(preconditioner):
    model, x, y = regression(n=300)
    cfg = replace(REGULAR, num_draws=60, num_burnin=10, batch_size=32, preconditioner=preconditioner)
    a, b = estimate_llc(model, (x, y), mse, cfg, n=300), estimate_llc_loop(model, (x, y), mse, cfg, n=300)
    torch.testing.assert_close(a.loss_traces, b.loss_traces, rtol=1e-4, atol=1e-5)
    assert a.init_loss == b.init_loss
    assert a.acceptance == pytest.approx(b.acceptance, abs=1e-3)


def test_rmsprop_chains_differ_from_plain_ones_and_agree_on_a_deep_network():
    """The preconditioner changes the chains (the option is not ignored), and the two implementations still draw
    the same chains on a multi-layer model, whose parameters the loop visits one tensor at a time."""
    model, x, y = deep_linear_network((3, 4, 4, 2), 1, seed=0, n=200)
    cfg = SGLDConfig(epsilon=1e-3, num_chains=2, num_draws=40, num_burnin=10, batch_size=50, preconditioner="rmsprop",
                     mala_every=5)
    a = estimate_llc(model, (x, y), gaussian_nll, cfg, n=200)
    b = estimate_llc_loop(model, (x, y), gaussian_nll, cfg, n=200)
    plain = estimate_llc(model, (x, y), gaussian_nll, replace(cfg, preconditioner="none"), n=200)
    torch.testing.assert_close(a.loss_traces, b.loss_traces, rtol=1e-4, atol=1e-5)
    assert a.acceptance == pytest.approx(b.acceptance, abs=1e-3)
    assert not torch.allclose(a.loss_traces, plain.loss_traces)


@pytest.mark.slow
def test_vmapped_estimator_agrees_with_loop():
    """Behaviour only: the chains vmapped together estimate what independent chains in a loop do (speed is
    benchmarks/llc.py's business, never a test's)."""
    model, x, y = regression()
    cfg = replace(REGULAR, num_chains=8)
    fast = estimate_llc(model, (x, y), mse, cfg, n=len(x))
    slow = estimate_llc_loop(model, (x, y), mse, replace(cfg, seed=100), n=len(x))  # independent chains
    assert abs(fast.mean - slow.mean) <= 2 * max(fast.std, slow.std)


def test_dataloader_input_gives_a_finite_estimate():
    model, x, y = regression(n=256)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, drop_last=True)
    cfg = replace(REGULAR, num_chains=2, num_draws=30, num_burnin=5, batch_size=32, init_loss_batches=8)
    est = estimate_llc(model, loader, mse, cfg, n=256)
    assert est.loss_traces.shape == (2, 30) and torch.isfinite(est.loss_traces).all()


@pytest.mark.parametrize("estimator", [estimate_llc, estimate_llc_loop])
def test_divergence_raises_scoring_error_naming_the_chain(estimator):
    model, x, y = regression(n=200)
    cfg = replace(REGULAR, epsilon=10.0, num_draws=2000, num_burnin=0, batch_size=32)
    with pytest.raises(ScoringError, match=r"chain 0 has a non-finite loss at step \d+"):
        estimator(model, (x, y), mse, cfg, n=200)  # stops at the first check after the blow-up, not at step 2000


def test_negative_llc_away_from_a_minimum_is_flagged():
    model, x, y = regression(n=500, at_minimum=False)
    cfg = replace(REGULAR, num_draws=200, num_burnin=0, batch_size=100)
    est = estimate_llc(model, (x, y), mse, cfg, n=500)
    assert est.mean < 0
    assert any("negative LLC" in d for d in est.diagnostics)
    assert any("went below the initial loss" in d for d in est.diagnostics)


# --- convergence diagnostics: MALA acceptance, split R-hat, trace drift --------------------------------------------


@pytest.mark.parametrize(("preconditioner", "epsilon"), [("none", 3e-4), ("rmsprop", 0.3)])
def test_mala_acceptance_of_the_vmapped_chains_matches_the_direct_formula(preconditioner, epsilon):
    """The vmapped estimator's cancellation-free acceptance and the loop's textbook float64 formula, on the
    same chains (same seed, same batches and noise); under RMSProp both with proposals of covariance eps G."""
    model, x, y = regression(n=300)
    cfg = replace(REGULAR, epsilon=epsilon, num_draws=60, num_burnin=10, batch_size=32, preconditioner=preconditioner)
    a, b = estimate_llc(model, (x, y), mse, cfg, n=300), estimate_llc_loop(model, (x, y), mse, cfg, n=300)
    assert a.acceptance is not None and 0 < a.acceptance < 1
    assert a.acceptance == pytest.approx(b.acceptance, abs=2e-3)


@pytest.mark.parametrize(("preconditioner", "epsilon"), [("none", 0.02), ("rmsprop", 0.01)])
def test_mala_acceptance_at_the_mode_measures_the_chains_age_and_is_probed_after_burn_in(preconditioner, epsilon):
    """A flat loss leaves U = gamma/2 |w - w*|^2. From w* one move of step h has log alpha = -h gamma^2 |xi|^2 / 8,
    about -d (h gamma)^2 / 8 (the science review's transient); after three relaxation times 2/(h gamma) the same
    step is accepted nearly always. Only kept steps are probed, so the burn-in decides which of the two is seen.
    Under RMSProp the gradient is 0, so G = 1 / rmsprop_eps = 2 and h = 2 eps: the probe must use the proposal's
    covariance eps G to give the same answer as plain SGLD at twice the step."""
    d, gamma = 20_000, 1.0
    model = nn.Linear(d, 1, bias=False)
    x, y = torch.zeros(16, d), torch.zeros(16, 1)  # loss 0 everywhere
    cfg = SGLDConfig(epsilon=epsilon, gamma=gamma, num_chains=4, num_draws=1, num_burnin=0, batch_size=16,
                     mala_every=1, init_loss_batches=1, preconditioner=preconditioner, rmsprop_eps=0.5)
    h = 0.02  # epsilon x G
    for estimator in (estimate_llc, estimate_llc_loop):
        at_mode = estimator(model, (x, y), mse, cfg, n=16).acceptance
        assert at_mode == pytest.approx(math.exp(-d * (h * gamma) ** 2 / 8), rel=0.05)  # 0.37
    relaxed = replace(cfg, num_burnin=math.ceil(3 * 2 / (h * gamma)), num_draws=100)
    assert estimate_llc(model, (x, y), mse, relaxed, n=16).acceptance > 0.9


def test_rmsprop_constants_are_checked():
    for bad in ({"preconditioner": "adam"}, {"rmsprop_alpha": 1.0}, {"rmsprop_alpha": -0.1}, {"rmsprop_eps": 0.0}):
        with pytest.raises(ValueError, match="preconditioner|rmsprop"):
            SGLDConfig(**bad)


def test_mala_acceptance_falls_as_the_step_grows_and_is_absent_without_noise():
    model, x, y = regression(n=500)
    cfg = replace(REGULAR, num_chains=2, num_draws=200, num_burnin=50, batch_size=500)  # full batch
    rates = [estimate_llc(model, (x, y), mse, replace(cfg, epsilon=eps), n=500).acceptance
             for eps in (1e-6, 1e-4, 1e-3)]
    assert rates[0] > 0.99 and rates[0] > rates[1] > rates[2], rates
    assert estimate_llc(model, (x, y), mse, replace(cfg, noise=False, num_draws=20), n=500).acceptance is None


def test_split_r_hat_is_one_for_chains_of_one_distribution_and_large_for_separated_chains():
    gen = torch.Generator().manual_seed(0)
    draws = torch.randn(4, 2000, generator=gen)
    assert split_r_hat(draws) == pytest.approx(1.0, abs=0.01)
    shifted = draws + 3 * torch.arange(4.0).unsqueeze(1)  # each chain around its own mean
    assert split_r_hat(shifted) > 2
    trending = draws + torch.linspace(0, 6, 2000)  # every chain still moving: halves disagree
    assert split_r_hat(trending) > 1.5
    assert split_r_hat(draws[:, :3]) != split_r_hat(draws[:, :3])  # NaN: too few draws


def test_trace_drift_is_near_zero_when_stationary_and_large_while_rising():
    gen = torch.Generator().manual_seed(0)
    flat = 2.0 + 0.01 * torch.randn(2, 400, generator=gen)
    assert abs(trace_drift(flat, init_loss=1.0)) < 0.01
    rising = 1.0 + torch.linspace(0, 2, 400).expand(2, 400)  # the 2nd quarter at ~1.75, the 4th at ~2.75
    # the mean draw is 2.0, a rise of 1.0 over L_n(w*), and the 4th quarter sits 1.0 above the 2nd
    assert trace_drift(rising, init_loss=1.0) == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("estimator", [estimate_llc, estimate_llc_loop])
def test_control_variate_keeps_the_chains_and_subtracts_each_batchs_loss_at_w_star(estimator):
    """The control variate changes what the trace records, not the chains: the same seed gives the same moves (MALA
    probes alike), L_n(w*) becomes the mean of every row's loss, and each kept loss is shifted by exactly
    L_n(w*) − L_B(w*) for the batch B that step drew (recomputed here from the seeded batch indices)."""
    model, x, y = regression(n=300)
    cfg = replace(REGULAR, num_chains=2, num_draws=40, num_burnin=10, batch_size=16, mala_every=5,
                  init_loss_batches=1)
    raw = estimator(model, (x, y), mse, cfg, n=300)
    cv = estimator(model, (x, y), mse, replace(cfg, control_variate=True), n=300)
    with torch.no_grad():
        rows = ((x @ model.weight.T - y) ** 2).squeeze(1)
    assert cv.init_loss == pytest.approx(float(rows.mean()), rel=1e-5)
    assert cv.acceptance == pytest.approx(raw.acceptance, abs=1e-6)
    gens = [torch.Generator().manual_seed(cfg.seed + c) for c in range(cfg.num_chains)]
    idx = torch.stack([torch.randint(300, (50, 16), generator=g) for g in gens])[:, cfg.num_burnin:]
    torch.testing.assert_close(cv.loss_traces, raw.loss_traces - rows[idx].mean(dim=-1) + cv.init_loss,
                               rtol=1e-4, atol=1e-5)


def test_control_variate_gives_the_same_llc_with_a_smaller_spread_between_chains():
    """Regular model (truth d/2 = 5). Batches of 64 rows, whose mean loss spreads by ~0.17 (× nβ 263 per draw):
    the plain chains' λ̂ spread by ~1.3, with the control variate by several times less, and the two estimates
    of the same chains agree within 2 of the plain one's standard errors (the same expectation; small batches also
    push SGLD's own spread, hence λ̂, up by ~10%). At the calibrated batch of 256 the control variate's λ̂ is 5
    within 10%. L_n(w*) of the plain estimate is taken over every row, as the free energy does."""
    model, x, y = regression()
    cfg = replace(REGULAR, num_chains=8, batch_size=64, init_loss_batches=32)
    raw = estimate_llc(model, (x, y), mse, cfg, n=len(x))
    cv = estimate_llc(model, (x, y), mse, replace(cfg, control_variate=True), n=len(x))
    assert cv.init_loss == pytest.approx(raw.init_loss, rel=1e-5)
    assert abs(cv.mean - raw.mean) <= 2 * raw.std / math.sqrt(8), (cv, raw)
    assert cv.std < raw.std / 3, (cv.per_chain, raw.per_chain)
    calibrated = estimate_llc(model, (x, y), mse, replace(REGULAR, control_variate=True), n=len(x))
    assert calibrated.mean == pytest.approx(5.0, rel=0.10), calibrated
