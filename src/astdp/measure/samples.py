"""What generated images are measured by, in the judge's feature space: the Frechet distance
to real images, improved precision and recall, and variety of shape."""
from __future__ import annotations

import torch


class _Given(torch.nn.Module):
    """The "feature network" of torchmetrics' FID when the features are already computed."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two sets of feature vectors (rows):
    torchmetrics' ``FrechetInceptionDistance`` with the given features in place of Inception's."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=_Given(a.shape[1])).to(a.device)
    fid.update(a.double(), real=False)  # double in, double out (it returns the inputs' dtype)
    fid.update(b.double(), real=True)
    return float(fid.compute())


def _kth_neighbour_radius(f: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's distance to its k-th nearest other row."""
    return torch.cdist(f, f).kthvalue(k + 1, dim=1).values  # +1: a point is its own nearest


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of feature sets (rows).

    Each set's manifold is the union of balls around its points reaching their k-th nearest
    neighbour. Precision: the share of fakes inside the real manifold (samples look real);
    recall: the share of reals inside the fake manifold (samples cover the real variety).
    """
    real, fake = real.double(), fake.double()
    inside = lambda points, centres, radii: (torch.cdist(points, centres) <= radii).any(1).double().mean().item()
    return (inside(fake, real, _kth_neighbour_radius(real, k)), inside(real, fake, _kth_neighbour_radius(fake, k)))


def mean_pairwise_distance(f: torch.Tensor) -> float:
    n = len(f)
    return (torch.cdist(f, f).sum() / (n * (n - 1))).item()


def variety(fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor
            ) -> dict[int, float]:
    """Per class: the spread of the fakes' features over the spread of the reals' features.

    Pixel noise still spreads features (less than pixels): feed it noise-free draws
    (``astdp.stages.generate.shape_features``) to measure variety of shape.
    """
    return {c: mean_pairwise_distance(fake[fake_labels == c]) / mean_pairwise_distance(real[real_labels == c])
            for c in fake_labels.unique().tolist()}
