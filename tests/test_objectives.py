"""Objectives against the reference's numbers, naive per-sample loops, and the paper's Proposition 1."""

import json
import math

import numpy as np
import pytest
import torch

import liv
from liv.objectives import FINETUNE_WEIGHTS, LIVWeights, infonce_loss, liv_loss, value, vip_loss

GAMMA = 0.98


def _naive_vip(e0, ek, ek1, eg, gamma=GAMMA, l2=False, perms=()):
    def v(a, g):
        if l2:
            return -math.sqrt(sum((x - y) ** 2 for x, y in zip(a, g)))
        cos = sum(x * y for x, y in zip(a, g)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in g))
        return cos / (1 - gamma)

    e0, ek, ek1, eg = (t.tolist() for t in (e0, ek, ek1, eg))
    b = len(e0)
    first = (1 - gamma) * -sum(v(e0[i], eg[i]) for i in range(b)) / b
    td = [math.exp(-(-1 + gamma * v(ek1[i], eg[i]) - v(ek[i], eg[i]))) for i in range(b)]
    loss = first + math.log(1e-8 + sum(td) / b)
    if perms:
        neg = [math.exp(-(-1 + gamma * v(ek1[p[i]], eg[i]) - v(ek[p[i]], eg[i]))) for p in perms for i in range(b)]
        loss += math.log(1e-8 + sum(neg) / len(neg))
    return loss


def _naive_infonce(img, txt, labels=None):
    # labels: one text id per sample; with them, other samples of the same id are no negatives
    img = [[x / math.sqrt(sum(y * y for y in r)) for x in r] for r in img.tolist()]
    txt = [[x / math.sqrt(sum(y * y for y in r)) for x in r] for r in txt.tolist()]
    b = len(img)
    labels = labels or list(range(b))
    logit = [[sum(a * c for a, c in zip(img[i], txt[j])) for j in range(b)] for i in range(b)]
    keep = [[j == i or labels[j] != labels[i] for j in range(b)] for i in range(b)]
    i2t = sum(-logit[i][i] + math.log(sum(math.exp(logit[i][j]) for j in range(b) if keep[i][j]))
              for i in range(b)) / b
    t2i = sum(-logit[i][i] + math.log(sum(math.exp(logit[j][i]) for j in range(b) if keep[i][j]))
              for i in range(b)) / b
    return (i2t + t2i) / 2


@pytest.fixture(scope="module")
def emb():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(6, 8, generator=g, dtype=torch.float64) for _ in range(5)]


def test_vip_matches_a_naive_loop(emb):
    e0, ek, ek1, eg, _ = emb
    assert vip_loss(e0, ek, ek1, eg).item() == pytest.approx(_naive_vip(e0, ek, ek1, eg), abs=1e-10)
    l2 = vip_loss(e0, ek, ek1, eg, similarity="neg_l2").item()
    assert l2 == pytest.approx(_naive_vip(e0, ek, ek1, eg, l2=True), abs=1e-10)


def test_negatives_add_one_term_over_all_shuffled_pairs(emb):
    e0, ek, ek1, eg, _ = emb
    ours = vip_loss(e0, ek, ek1, eg, num_negatives=3, generator=torch.Generator().manual_seed(7)).item()
    g = torch.Generator().manual_seed(7)
    perms = [torch.randperm(6, generator=g).tolist() for _ in range(3)]
    assert ours == pytest.approx(_naive_vip(e0, ek, ek1, eg, perms=perms), abs=1e-10)
    again = vip_loss(e0, ek, ek1, eg, num_negatives=3, generator=torch.Generator().manual_seed(7)).item()
    assert again == ours


def test_infonce_matches_a_naive_loop(emb):
    assert infonce_loss(emb[0], emb[1]).item() == pytest.approx(_naive_infonce(emb[0], emb[1]), abs=1e-10)


def test_infonce_can_ignore_identical_texts(emb):
    labels = [0, 1, 0, 2, 1, 0]
    same = torch.tensor([[a == b for b in labels] for a in labels])
    got = infonce_loss(emb[0], emb[1], same).item()
    assert got == pytest.approx(_naive_infonce(emb[0], emb[1], labels), abs=1e-10)
    assert got < infonce_loss(emb[0], emb[1]).item()  # fewer negatives in every softmax
    # with distinct texts the mask changes nothing
    assert infonce_loss(emb[0], emb[1], torch.eye(6, dtype=torch.bool)).item() == pytest.approx(
        infonce_loss(emb[0], emb[1]).item(), abs=1e-12)


def test_reference_fixture_losses(reference_fixtures):
    a = np.load(reference_fixtures / "arrays.npz")
    t = {k: torch.from_numpy(a[f"loss_inputs_{k}"]) for k in ("e0", "eg", "es", "es_next", "e_lang", "e_goal_frame")}
    assert vip_loss(t["e0"], t["es"], t["es_next"], t["eg"]).item() == pytest.approx(float(a["loss_vip_image"]), abs=1e-5)
    assert vip_loss(t["e0"], t["es"], t["es_next"], t["e_lang"]).item() == pytest.approx(
        float(a["loss_vip_language"]), abs=1e-5)
    assert infonce_loss(t["e_goal_frame"], t["e_lang"]).item() == pytest.approx(float(a["loss_infonce"]), abs=1e-5)


def test_proposition_1_vip_on_degenerate_videos_is_infonce_plus_one():
    """Every frame of each video is its goal frame g_i, all annotated with one text l: VIP-L equals the
    (1-gamma)-scaled InfoNCE of l against the goals (expectation over negatives, eq. 10) plus 1."""
    g = torch.Generator().manual_seed(3)
    goals, text = torch.randn(16, 32, generator=g, dtype=torch.float64), torch.randn(32, generator=g, dtype=torch.float64)
    texts = text.expand(16, 32)
    vip_l = vip_loss(goals, goals, goals, texts, gamma=GAMMA)
    scaled_s = (1 - GAMMA) * value(goals, text, gamma=GAMMA)  # (1-gamma) S = cos
    infonce_mean = -(scaled_s - torch.log(torch.exp(scaled_s).mean())).mean()
    assert vip_l.item() == pytest.approx(infonce_mean.item() + 1, abs=1e-7)  # eps=1e-8 inside the log


def test_liv_loss_weights_and_terms(emb):
    e0, ek, ek1, eg, et = emb
    total, terms = liv_loss(e0, eg, ek, ek1, eg, et, LIVWeights(0.5, 2.0, 3.0, 0))
    expected = 0.5 * infonce_loss(eg, et) + 2.0 * vip_loss(e0, ek, ek1, eg) + 3.0 * vip_loss(e0, ek, ek1, et)
    assert total.item() == pytest.approx(expected.item(), abs=1e-10)
    assert set(terms) == {"infonce", "vip_image", "vip_text"}
    _, only = liv_loss(e0, eg, ek, ek1, eg, et, FINETUNE_WEIGHTS)
    assert set(only) == {"infonce", "vip_image"}


def _fixture_batch(reference_fixtures):
    frames = np.load(reference_fixtures / "arrays.npz")["train_batch_frames_uint8"]  # (4, 5, 224, 224, 3)
    meta = json.loads((reference_fixtures / "meta.json").read_text())
    return frames, meta


def _metrics(model, frames, texts, weights):
    b = frames.shape[0]
    img, txt = model(model.preprocess(frames.reshape(-1, *frames.shape[2:])), model.tokenize(texts))
    img = img.view(b, 5, -1)
    total, terms = liv_loss(img[:, 0], img[:, 1], img[:, 2], img[:, 3], img[:, 4], txt, weights)
    return total, terms


@pytest.mark.parametrize("key, weights", [("train_metrics_finetune", LIVWeights(1, 1, 0, 0)),
                                          ("train_metrics_pretrain_no_negatives", LIVWeights(1, 1, 1, 0))])
def test_reference_training_batch_metrics(reference_fixtures, key, weights):
    frames, meta = _fixture_batch(reference_fixtures)
    model = liv.load(reference_fixtures / "checkpoint_liv.pt")
    with torch.no_grad():
        total, terms = _metrics(model.eval(), frames, meta["train_batch_texts"], weights)
    ref = meta[key]["metrics"]
    assert terms["infonce"].item() == pytest.approx(ref["clip_loss"], abs=1e-5)
    assert terms["vip_image"].item() == pytest.approx(ref["vip_loss_visual"], abs=1e-5)
    if "vip_loss_lang" in ref:
        assert terms["vip_text"].item() == pytest.approx(ref["vip_loss_lang"], abs=1e-5)
    assert total.item() == pytest.approx(ref["full_loss"], abs=1e-5)


def test_one_reference_adam_step(reference_fixtures):
    """Train-mode step with the reference optimiser, then eval metrics: both as the reference's."""
    frames, meta = _fixture_batch(reference_fixtures)
    texts, ref = meta["train_batch_texts"], meta["train_one_step_finetune"]
    model = liv.load(reference_fixtures / "checkpoint_liv.pt").train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5, betas=(0.9, 0.98),
                           eps=1e-6, weight_decay=1e-3)
    total, terms = _metrics(model, frames, texts, FINETUNE_WEIGHTS)  # one forward: BN statistics move once
    during = ref["metrics_during_step"]
    assert terms["infonce"].item() == pytest.approx(during["clip_loss"], abs=1e-5)
    assert terms["vip_image"].item() == pytest.approx(during["vip_loss_visual"], abs=1e-4)
    before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    opt.zero_grad()
    total.backward()
    opt.step()
    with torch.no_grad():
        _, terms = _metrics(model.eval(), frames, texts, FINETUNE_WEIGHTS)
    after = ref["metrics_after_step_eval"]
    assert terms["infonce"].item() == pytest.approx(after["clip_loss"], abs=1e-5)
    assert terms["vip_image"].item() == pytest.approx(after["vip_loss_visual"], abs=1e-5)

    # Weights against the reference's snapshot after the same step. Adam's first step is about
    # lr * sign(grad); measured: ~100 of 4.6M elements move the other way than in the reference, all with
    # small gradients after train-mode BatchNorm. On every one of them a float64 recomputation of the
    # gradient agrees with our direction, so the difference is the reference's rounding, not ours.
    model64 = liv.load(reference_fixtures / "checkpoint_liv.pt").train().double()
    pixels64 = model64.preprocess(frames.reshape(-1, *frames.shape[2:])).double()
    img, txt = model64(pixels64, model64.tokenize(texts))
    img = img.view(frames.shape[0], 5, -1)
    total64, _ = liv_loss(img[:, 0], img[:, 1], img[:, 2], img[:, 3], img[:, 4], txt, FINETUNE_WEIGHTS)
    total64.backward()
    snap = liv.load(reference_fixtures / "checkpoint_snapshot.pt").clip.state_dict()
    now, differing, count = model.clip.state_dict(), 0, 0
    for k, p64 in model64.clip.named_parameters():
        if p64.grad is None:
            continue
        ours, theirs = now[k] - before[k], snap[k] - before[k]
        differing, count = differing + int(((ours - theirs).abs() > 2e-6).sum()), count + ours.numel()
        flipped = (ours.sign() != theirs.sign()) & (ours.abs() > 5e-6) & (theirs.abs() > 5e-6)
        truth = -(p64.grad + 1e-3 * p64.detach())
        assert torch.equal(ours[flipped].sign(), truth[flipped].sign().float()), k
    assert differing < 1e-4 * count
