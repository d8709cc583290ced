"""The BSARec-style encoder: its causal filter matches the published FFT filter, and its
relative-position attention matches the written-out formula."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from models.nn.batching import collate
from models.nn.config import ModelConfig
from models.nn.frequency import FrequencyFilter, causal_toeplitz, lowpass_kernel
from models.nn.sasrec import CausalSelfAttention

Factory = Callable[..., Any]


def _fft_filter_last(window: torch.Tensor, cutoff: int, beta: torch.Tensor) -> torch.Tensor:
    """The paper's formula on one left-padded (L, d) window: rfft, zero high modes, irfft."""
    spectrum = torch.fft.rfft(window, dim=0, norm="ortho")
    spectrum[cutoff // 2 + 1 :] = 0
    low = torch.fft.irfft(spectrum, n=window.shape[0], dim=0, norm="ortho")
    return (low + beta * (window - low))[-1]


def test_each_position_gets_the_fft_filter_of_its_own_window() -> None:
    torch.manual_seed(0)
    max_len, dim, cutoff, n = 10, 4, 5, 7
    filt = FrequencyFilter(dim, dropout=0.0, max_len=max_len, cutoff=cutoff).eval()
    x = torch.randn(1, n, dim)
    t = filt.toeplitz[:n, :n]  # type: ignore[index]
    low = t @ x[0]
    ours = low + filt.sqrt_beta.detach().square() * (x[0] - low)
    for pos in range(n):
        window = torch.zeros(max_len, dim)
        window[max_len - pos - 1 :] = x[0, : pos + 1]  # left padding with zeros
        ref = _fft_filter_last(window, cutoff, filt.sqrt_beta.detach().square())
        torch.testing.assert_close(ours[pos], ref, rtol=1e-5, atol=1e-5)


def test_kernel_keeps_exactly_the_low_modes() -> None:
    k = lowpass_kernel(50, 5)
    spectrum = torch.fft.rfft(k)
    assert torch.allclose(spectrum.real[:3], torch.ones(3), atol=1e-5)
    assert torch.allclose(spectrum.abs()[3:], torch.zeros(23), atol=1e-5)
    t = causal_toeplitz(k)
    assert torch.equal(t.triu(1), torch.zeros(50, 50)) and t[7, 3] == k[4]


def test_one_pass_equals_every_prefix_as_a_sample(
    causal_arch: str, make_network: Factory, make_seq: Factory
) -> None:
    """Loss at every position of one pass sees what each prefix alone would show."""
    net = make_network(causal_arch)
    items = [2, 9, 4, 17, 6, 11]
    full = net(collate([make_seq(items)], 8, False))[0]
    for t in range(1, len(items) + 1):
        prefix = net(collate([make_seq(items[:t])], 8, False))[0, t - 1]
        torch.testing.assert_close(full[t - 1], prefix, rtol=1e-5, atol=1e-5)


def test_alpha_zero_is_attention_only(make_network: Factory, make_seq: Factory) -> None:
    net = make_network("bsarec", alpha=0.0)
    batch = collate([make_seq([2, 3, 4, 5])], 8, False)
    before = net(batch)
    with torch.no_grad():
        for block in net.encoder.blocks:  # type: ignore[union-attr]
            block.filter.sqrt_beta.add_(5.0)
    torch.testing.assert_close(net(batch), before)


def test_lag_bias_attention_matches_the_written_out_formula() -> None:
    torch.manual_seed(0)
    attn = CausalSelfAttention(dim=8, n_heads=2, dropout=0.0, max_lag=6).eval()
    assert attn.lag_bias is not None
    with torch.no_grad():
        attn.lag_bias.normal_()
    x = torch.randn(3, 5, 8)
    q, k, v = attn.qkv(x).view(3, 5, 3, 2, 4).unbind(2)
    scores = torch.einsum("bthe,bshe->bhts", q, k) / 2.0  # sqrt of the head width 4
    lag = torch.arange(5).unsqueeze(1) - torch.arange(5).unsqueeze(0)
    scores = scores + attn.lag_bias[:, lag.clamp(min=0)]
    scores = scores.masked_fill(lag < 0, float("-inf"))
    y = torch.einsum("bhts,bshe->bthe", scores.softmax(-1), v).reshape(3, 5, 8)
    torch.testing.assert_close(attn(x), attn.out(y), rtol=1e-5, atol=1e-5)


def test_relative_positions_one_pass_equals_every_prefix(
    make_network: Factory, make_seq: Factory
) -> None:
    net = make_network("bsarec-causal", positions="relative")
    assert net.encoder.positions is None  # type: ignore[union-attr]
    items = [2, 9, 4, 17, 6, 11, 3, 8]
    full = net(collate([make_seq(items)], 8, False))[0]
    for t in range(1, len(items) + 1):
        prefix = net(collate([make_seq(items[:t])], 8, False))[0, t - 1]
        torch.testing.assert_close(full[t - 1], prefix, rtol=1e-5, atol=1e-5)
    shuffled = net(collate([make_seq(items[::-1])], 8, False))[0, -1]
    assert not torch.allclose(full[-1], shuffled, atol=1e-4)  # order still matters


def test_checkpoints_without_the_field_keep_absolute_positions() -> None:
    cfg = ModelConfig.from_dict({"arch": "bsarec", "n_items": 5})
    assert cfg.positions == "absolute"
    assert ModelConfig.from_dict({**cfg.to_dict(), "positions": "relative"}).positions == (
        "relative"
    )


def test_window_filter_is_the_fft_of_the_left_padded_window_at_every_slot() -> None:
    torch.manual_seed(0)
    max_len, dim, cutoff, n = 10, 4, 5, 7
    filt = FrequencyFilter(dim, 0.0, max_len, cutoff, scope="window").eval()
    x = torch.randn(1, n + 2, dim)  # two padding slots on the right, masked out
    mask = (torch.arange(n + 2) < n).view(1, -1, 1).float()
    t = filt.toeplitz[: n + 2, : n + 2]  # type: ignore[index]
    low = (t @ (x * mask))[0, :n]
    beta = filt.sqrt_beta.detach().square()
    window = torch.zeros(max_len, dim)
    window[max_len - n :] = x[0, :n]
    spectrum = torch.fft.rfft(window, dim=0, norm="ortho")
    spectrum[cutoff // 2 + 1 :] = 0
    ref_low = torch.fft.irfft(spectrum, n=max_len, dim=0, norm="ortho")[max_len - n :]
    torch.testing.assert_close(low, ref_low, rtol=1e-5, atol=1e-5)
    ours = filt.norm(x[0, :n] + low + beta * (x[0, :n] - low))
    torch.testing.assert_close(filt(x, mask)[0, :n], ours, rtol=1e-5, atol=1e-5)


def test_window_scope_newest_state_ignores_padding_but_reads_the_whole_window(
    make_network: Factory, make_seq: Factory
) -> None:
    net = make_network("bsarec", filter_scope="window")
    items = [2, 9, 4, 17, 6]
    alone = net(collate([make_seq(items)], 8, False))[0]
    padded = net(collate([make_seq(items), make_seq([3] * 8)], 8, False))[0, : len(items)]
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-5)
    longer = net(collate([make_seq([*items, 11])], 8, False))[0, : len(items)]
    assert not torch.allclose(alone, longer, atol=1e-4)  # earlier states see later events


def test_relative_positions_keep_grad_x_input_informative(
    make_network: Factory, make_seq: Factory
) -> None:
    """Scaling one event's input must move the state (else influences are all zero)."""
    net = make_network("bsarec", positions="relative")
    batch = collate([make_seq([4, 9, 13])], 8, False)
    x = net.content(batch).detach().requires_grad_(True)
    h = net.last_state(net.encode(x, batch.lengths), batch.lengths)
    (g,) = torch.autograd.grad(h[0] @ torch.randn(16), x)
    assert (g * x).sum(-1).abs().max() > 1e-3
