"""The instruments the model cannot flatter: precision/recall, variety of shape, the k-NN fill."""
import pytest
import torch
from omegaconf import OmegaConf

from astdp.measure.inpaint import knn_fill
from astdp.measure.samples import precision_recall, variety
from astdp.stages.generate import draw, shape_features
from tests.conftest import ROOT, data


class Prototypes:
    """A 'network' that draws one fixed image per class, plus Gaussian drive noise if asked."""

    def __init__(self, protos: torch.Tensor):
        self.protos = protos

    def generate(self, labels, steps, noise=0.0, generator=None, **sampler):
        x = self.protos[labels]
        return (x + noise * torch.randn(x.shape, generator=generator)).clamp(0, 1)


class Memory:
    """A 'network' that draws a random real image of each asked class."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.by_class = [x[y == c] for c in range(10)]

    def generate(self, labels, steps, noise=0.0, generator=None, **sampler):
        return torch.stack([self.by_class[c][torch.randint(len(self.by_class[c]), (), generator=generator)]
                            for c in labels.tolist()])


class Pixels:  # a judge whose features are the pixels: the harshest case for noise
    embed = staticmethod(lambda x: x)


def test_pixel_noise_on_a_fixed_prototype_is_not_variety():
    x, y = data(600)
    protos = torch.stack([x[y == c].mean(0) for c in range(10)])
    labels = torch.arange(10).repeat_interleave(20)
    g = OmegaConf.create({"settle_steps": 1, "sample": True, "window": 4, "noise": 0.6, "beta": 1.0, "beta_start": None,
                            "label_strength": 1.0, "label_hold": None, "pixel_spikes": False, "from_memory": False})
    gen = torch.Generator().manual_seed(0)
    noisy = draw(Prototypes(protos), labels, g, gen)
    fooled = variety(noisy, labels, x, y)  # what pixel spread calls variety: a lot
    assert min(fooled.values()) > 0.3, fooled
    shapes = variety(shape_features(Prototypes(protos), labels, g, gen, Pixels), labels, x, y)
    assert max(shapes.values()) < 1e-6, shapes
    # real images of each class, drawn at random, are as varied as the real images
    real = variety(shape_features(Memory(x, y), labels, OmegaConf.merge(g, {"window": 1}), gen, Pixels), labels, x, y)
    assert all(0.9 < v < 1.1 for v in real.values()), real


def test_precision_and_recall_tell_faithful_from_collapsed_and_from_far():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 8, generator=g)
    faithful = precision_recall(real, torch.randn(500, 8, generator=g))
    collapsed = precision_recall(real, 0.05 * torch.randn(500, 8, generator=g))  # every sample near one mode
    far = precision_recall(real, torch.randn(500, 8, generator=g) + 10)
    assert faithful[0] > 0.8 and faithful[1] > 0.8, faithful
    assert collapsed[0] > 0.9 and collapsed[1] < 0.1, collapsed
    assert far == (0.0, 0.0)


def test_sample_variety_tells_real_style_from_variety_in_other_directions(monkeypatch):
    """benchmarks/sample_variety.py: samples spread as the reals reach their share along the reals'
    principal directions; samples that vary only across them reach none; a narrow sampler shows
    as a small spread."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from sample_variety import shares

    g = torch.Generator().manual_seed(0)
    style = torch.tensor([4.0, 2.0, 1.0, 0.1, 0.1, 0.1])  # real images vary mostly along three axes
    real = torch.randn(2000, 6, generator=g) * style
    alike = shares(real, torch.randn(2000, 6, generator=g) * style, k=3)
    across = shares(real, torch.randn(2000, 6, generator=g) * torch.tensor([0.0, 0, 0, 1, 1, 1]), k=3)
    narrow = shares(real, 0.3 * torch.randn(2000, 6, generator=g) * style, k=3)
    assert alike["real_style_share"] > 0.99 and abs(alike["style_share"] - alike["real_style_share"]) < 0.01
    assert 0.9 < alike["spread"] < 1.1 and across["style_share"] < 0.01
    assert 0.07 < narrow["spread"] < 0.11 and narrow["style_share"] > 0.99


def test_knn_fill_takes_the_mean_of_the_nearest_on_the_known_pixels():
    x, _ = data(100)
    known = torch.zeros(784, dtype=torch.bool)
    known[:392] = True
    reference = torch.cat([x[:50], data(300, 5)[0]])
    one = knn_fill(x[:50], known, reference, k=1)
    assert torch.equal(one, x[:50])  # each image is in the reference: its own bottom half
    ten = knn_fill(x[50:], known, reference, k=10)
    assert torch.equal(ten[:, known], x[50:, known])
    d = torch.cdist(x[50:, known], reference[:, known])
    expected = reference[d.argsort(1)[:, :10]].mean(1)[:, ~known]
    torch.testing.assert_close(ten[:, ~known], expected)


def test_a_copied_training_image_is_its_own_nearest_neighbour():
    """nearest.png would show a memorised sample beside itself."""
    from astdp.stages.generate import nearest_training_images

    real = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    fake = torch.cat([real[[7, 31]], real[[2]] + 0.01])
    near = nearest_training_images(fake, real, k=3)
    assert near.shape == (3, 3) and near[:, 0].tolist() == [7, 31, 2]


def test_the_frechet_distance_is_torchmetrics_and_matches_the_formula():
    """torchmetrics' FID on the judge's features gives the closed form
    |mu_a - mu_b|^2 + tr(A) + tr(B) - 2 tr((A^1/2 B A^1/2)^1/2) of 0.19.0's own code: to 12
    digits on full-rank features, to 7 on the class means (a rank-deficient covariance)."""
    from astdp.measure.samples import frechet_distance

    def closed_form(a, b):
        a, b = a.double(), b.double()
        cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
        w, v = torch.linalg.eigh(cov_a)
        root = (v * w.clamp(min=0).sqrt()) @ v.T
        cross = torch.linalg.eigvalsh(root @ cov_b @ root).clamp(min=0).sqrt().sum()
        return float((a.mean(0) - b.mean(0)).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)

    g = torch.Generator().manual_seed(0)
    real = torch.relu(torch.randn(3000, 64, generator=g))
    fake = torch.relu(1.2 * torch.randn(1000, 64, generator=g) + 0.1)
    assert frechet_distance(fake, real) == pytest.approx(closed_form(fake, real), rel=1e-12)
    means = fake[:10].repeat_interleave(100, 0)
    assert frechet_distance(means, real) == pytest.approx(closed_form(means, real), rel=1e-7)
    assert frechet_distance(real[:1500], real[1500:]) < 0.25 * frechet_distance(fake, real)  # two halves of one set


def test_flop_count_counts_each_product_of_a_step_the_rules_in_place_ones_too(monkeypatch):
    """benchmarks/flops.py: the rule adds a play's change into the batch's in place (addmm_), which
    torch's counter skips by itself; the twin's step is its two layers' products, forward and back;
    the plays' shares add up to the step."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from bench import BASELINE, composed
    from flops import flops, step_flops

    from astdp.nets.rule import stdp

    pre, post, out = torch.rand(8, 30), torch.rand(8, 20), torch.zeros(30, 20)
    assert flops(lambda: stdp(pre, post, post + 1)) == flops(lambda: stdp(pre, post, post + 1, out=out)) == 2 * 8 * 30 * 20
    row = step_flops(composed("model.net.hidden=[20]"), BASELINE)
    b = row["batch"]
    # the twin: W1 forward and its gradient (784 x 20); W2 forward, its gradient and its input's gradient (20 x 10)
    assert row["backprop_mflop"] == round(2 * b * (2 * 784 * 20 + 3 * 20 * 10) / 1e6, 2)
    assert abs(sum(row["plays_mflop"].values()) - row["astdp_mflop"]) < 0.05
    assert set(row["plays_mflop"]) == {"classify", "generate", "redraw", "complete"} and row["ratio"] > 1


def test_a_code_taught_for_completion_by_the_rule_learns_from_the_known_pixels_only(monkeypatch):
    """benchmarks/completion_code.py's rule learner: a synapse from a pixel that every image hid
    never changes (a free pixel is the network's own echo), the known pixels' do, and the fill of
    the hidden half improves."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from completion_code import rule_learner

    torch.manual_seed(0)
    x, _ = data(512)
    learn, fill, _, net = rule_learner(64, 1e-2, torch.Generator().manual_seed(0))
    bottom = net.halves(torch.device("cpu"))[0]
    error = lambda: ((fill(x, ~bottom) - x) ** 2)[:, bottom].mean().item()
    before, w = error(), net.W[0][:784].clone()
    for _ in range(5):
        for xb in x.split(64):
            learn(xb, bottom.expand(len(xb), -1))
    assert torch.equal(net.W[0][:784][bottom], w[bottom]) and not torch.equal(net.W[0][:784][~bottom], w[~bottom])
    assert error() < 0.7 * before, (before, error())
